-- HubSpot CRM contacts, one row per id (newest updatedAt, ISO 8601 with milliseconds).
{{ config(unique_key='crm_contact_id') }}

with

newest_raw as (
    {{ latest_version(source('raw', 'crm_contacts'), from_iso8601("record_version")) }}
),

latest as (
    {{ parse_json('newest_raw', {
        'updated_at': '$.updatedAt',
        'id': '$.id',
        'properties__email': '$.properties.email',
        'properties__phone': '$.properties.phone',
        'properties__firstname': '$.properties.firstname',
        'properties__lastname': '$.properties.lastname',
        'archived': '$.archived',
        'created_at': '$.createdAt',
    }) }}
),

renamed as (
    select
        -- ids
        id as crm_contact_id,

        -- strings
        {{ normalized_email("properties__email") }} as email,
        properties__phone as phone_raw,
        {{ normalized_phone("properties__phone") }} as phone,
        properties__firstname as first_name,
        properties__lastname as last_name,

        -- booleans
        coalesce(try_cast(archived as boolean), false) as is_archived,

        -- timestamps
        {{ from_iso8601("created_at") }} as created_at,
        {{ from_iso8601("updated_at") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

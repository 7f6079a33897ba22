-- HubSpot CRM contacts, one row per id (newest updatedAt, ISO 8601 with milliseconds).
{{ config(unique_key='crm_contact_id') }}

with

source as (
    select * from {{ source('raw', 'crm_contacts') }}
),

latest as (
    {{ latest_version('source', from_iso8601("raw_json ->> '$.updatedAt'")) }}
),

renamed as (
    select
        -- ids
        raw_json ->> '$.id' as crm_contact_id,

        -- strings
        {{ normalized_email("raw_json ->> '$.properties.email'") }} as email,
        raw_json ->> '$.properties.phone' as phone_raw,
        {{ normalized_phone("raw_json ->> '$.properties.phone'") }} as phone,
        raw_json ->> '$.properties.firstname' as first_name,
        raw_json ->> '$.properties.lastname' as last_name,

        -- booleans
        coalesce(try_cast(raw_json ->> '$.archived' as boolean), false) as is_archived,

        -- timestamps
        {{ from_iso8601("raw_json ->> '$.createdAt'") }} as created_at,
        {{ from_iso8601("raw_json ->> '$.updatedAt'") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

-- Delighted survey responses, one row per id (newest updated_at, unix seconds). The surveyed
-- contact is person_properties.contact_ref (`<channel>:<source id>`, our contact_id).
{{ config(unique_key='response_id') }}

with

source as (
    select * from {{ source('raw', 'surveys_responses') }}
),

latest as (
    {{ latest_version('source', from_epoch("raw_json ->> '$.updated_at'")) }}
),

renamed as (
    select
        -- ids
        raw_json ->> '$.id' as response_id,
        nullif(trim(raw_json ->> '$.person_properties.contact_ref'), '') as contact_id,
        raw_json ->> '$.person.id' as person_id,

        -- strings
        lower(raw_json ->> '$.survey_type') as survey_type,
        raw_json ->> '$.comment' as comment,
        {{ normalized_email("raw_json ->> '$.person.email'") }} as email,
        {{ normalized_phone("raw_json ->> '$.person.phone_number'") }} as phone,

        -- numerics
        try_cast(raw_json ->> '$.score' as integer) as score,

        -- timestamps
        {{ from_epoch("raw_json ->> '$.created_at'") }} as answered_at,
        {{ from_epoch("raw_json ->> '$.updated_at'") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

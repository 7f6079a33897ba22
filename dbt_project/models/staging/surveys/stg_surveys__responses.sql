-- Delighted survey responses, one row per id (newest updated_at, unix seconds). The surveyed
-- contact is person_properties.contact_ref (`<channel>:<source id>`, our contact_id).
{{ config(unique_key='response_id') }}

with

newest_raw as (
    {{ latest_version(source('raw', 'surveys_responses'), from_epoch("record_version")) }}
),

latest as (
    {{ parse_json('newest_raw', {
        'updated_at': '$.updated_at',
        'id': '$.id',
        'person_properties__contact_ref': '$.person_properties.contact_ref',
        'person__id': '$.person.id',
        'survey_type': '$.survey_type',
        'comment': '$.comment',
        'person__email': '$.person.email',
        'person__phone_number': '$.person.phone_number',
        'score': '$.score',
        'created_at': '$.created_at',
    }) }}
),

renamed as (
    select
        -- ids
        id as response_id,
        nullif(trim(person_properties__contact_ref), '') as contact_id,
        person__id as person_id,

        -- strings
        lower(survey_type) as survey_type,
        comment,
        {{ normalized_email("person__email") }} as email,
        {{ normalized_phone("person__phone_number") }} as phone,

        -- numerics
        try_cast(score as integer) as score,

        -- timestamps
        {{ from_epoch("created_at") }} as answered_at,
        {{ from_epoch("updated_at") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

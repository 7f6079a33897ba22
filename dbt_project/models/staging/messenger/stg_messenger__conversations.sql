-- Meta Graph page conversations, one row per conversation id (newest updated_time). The
-- customer is the participant that is not the page; the page label carries the topic code.
{{ config(unique_key='conversation_id') }}

with

source as (
    select * from {{ source('raw', 'messenger_conversations') }}
),

latest as (
    {{ latest_version('source', from_iso8601("raw_json ->> '$.updated_time'")) }}
),

renamed as (
    select
        -- ids
        raw_json ->> '$.id' as conversation_id,
        raw_json ->> '$.participants.data[0].id' as messenger_psid,

        -- strings
        {{ normalized_email("raw_json ->> '$.participants.data[0].email'") }} as email,
        nullif(trim(raw_json ->> '$.labels.data[0].name'), '') as source_topic,

        -- numerics
        try_cast(raw_json ->> '$.message_count' as integer) as message_count,

        -- timestamps
        {{ from_iso8601("raw_json ->> '$.updated_time'") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

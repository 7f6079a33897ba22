-- Meta Graph messages, one row per message id (immutable). A Graph message does not name its
-- conversation: it is the `{conversation-id}` of the request that returned it, recovered from
-- the landing batch's request_url.
{{ config(unique_key='message_id') }}

with

source as (
    select * from {{ source('raw', 'messenger_messages') }}
),

batches as (
    select * from {{ source('landing', 'batches') }}
),

latest as (
    {{ latest_version('source', from_iso8601("raw_json ->> '$.created_time'")) }}
),

renamed as (
    select
        -- ids
        latest.raw_json ->> '$.id' as message_id,
        nullif(regexp_extract(batches.request_url, '/([^/?]+)/messages', 1), '') as conversation_id,
        latest.raw_json ->> '$.from.id' as sender_id,

        -- strings
        latest.raw_json ->> '$.message' as message,

        -- booleans
        (latest.raw_json ->> '$.from.id') = '{{ var("messenger_page_id") }}' as is_from_page,
        (latest.raw_json ->> '$.from.id') = '{{ var("messenger_page_id") }}'
        and list_contains(
            json_extract_string(latest.raw_json, '$.tags.data[*].name'),
            '{{ var("messenger_bot_tag") }}'
        ) as is_from_bot,
        starts_with(latest.raw_json ->> '$.message', '{{ var("thread_closing_prefix") }}')
            as is_closing,
        starts_with(latest.raw_json ->> '$.message', '{{ var("thread_closing_prefix") }}')
        and contains(latest.raw_json ->> '$.message', '{{ var("thread_resolved_marker") }}')
            as is_resolving,

        -- timestamps
        {{ from_iso8601("latest.raw_json ->> '$.created_time'") }} as sent_at,
        latest.validated_at,
    from latest
    left join batches
        on latest.batch_id = batches.batch_id
),

replacing as (
    {{ keep_newer_versions('renamed', 'sent_at') }}
)

select * from replacing

-- Meta Graph messages, one row per message id (immutable). A Graph message does not name its
-- conversation: it is the `{conversation-id}` of the request that returned it, recovered from
-- the landing batch's request_url.
{{ config(unique_key='message_id') }}

with

newest_raw as (
    {{ latest_version(source('raw', 'messenger_messages'), from_iso8601("record_version")) }}
),

batches as (
    select * from {{ source('landing', 'batches') }}
    {%- if is_incremental() %}
    -- a record carries its landing batch's extracted_at, so an incremental run joins only the
    -- batches extracted since the oldest record it reads: the newest row groups of a table
    -- that holds ~840k Messenger batches at 5M contacts (one per conversation's page)
    where extracted_at >= (
        select min(extracted_at)
        from {{ source('raw', 'messenger_messages') }}
        where {{ validated_since_last_build() }}
    )
    {%- endif %}
),

latest as (
    {{ parse_json('newest_raw', {
        'created_time': '$.created_time',
        'id': '$.id',
        'from__id': '$.from.id',
        'message': '$.message',
        'tags': '$.tags',
    }) }}
),

renamed as (
    select
        -- ids
        latest.id as message_id,
        nullif(regexp_extract(batches.request_url, '/([^/?]+)/messages', 1), '') as conversation_id,
        latest.from__id as sender_id,

        -- strings
        latest.message,

        -- booleans
        latest.from__id = '{{ var("messenger_page_id") }}' as is_from_page,
        latest.from__id = '{{ var("messenger_page_id") }}'
        and list_contains(
            json_extract_string(latest.tags::json, '$.data[*].name'),
            '{{ var("messenger_bot_tag") }}'
        ) as is_from_bot,
        starts_with(latest.message, '{{ var("thread_closing_prefix") }}')
            as is_closing,
        starts_with(latest.message, '{{ var("thread_closing_prefix") }}')
        and contains(latest.message, '{{ var("thread_resolved_marker") }}')
            as is_resolving,

        -- timestamps
        {{ from_iso8601("latest.created_time") }} as sent_at,
        latest.validated_at,
    from latest
    left join batches
        on latest.batch_id = batches.batch_id
),

replacing as (
    {{ keep_newer_versions('renamed', 'sent_at') }}
)

select * from replacing

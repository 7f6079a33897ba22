-- Meta Graph page conversations, one row per conversation id (newest updated_time). The
-- customer is the participant that is not the page; the page label carries the topic code.
{{ config(unique_key='conversation_id') }}

with

newest_raw as (
    {{ latest_version(source('raw', 'messenger_conversations'), from_iso8601("record_version")) }}
),

latest as (
    {{ parse_json('newest_raw', {
        'updated_time': '$.updated_time',
        'id': '$.id',
        'participants__data_0__id': '$.participants.data[0].id',
        'participants__data_0__email': '$.participants.data[0].email',
        'labels__data_0__name': '$.labels.data[0].name',
        'message_count': '$.message_count',
    }) }}
),

renamed as (
    select
        -- ids
        id as conversation_id,
        participants__data_0__id as messenger_psid,

        -- strings
        {{ normalized_email("participants__data_0__email") }} as email,
        nullif(trim(labels__data_0__name), '') as source_topic,

        -- numerics
        try_cast(message_count as integer) as message_count,

        -- timestamps
        {{ from_iso8601("updated_time") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

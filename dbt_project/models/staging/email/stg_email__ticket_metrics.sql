-- Zendesk ticket metric sets (sideloaded with the tickets), one row per ticket (newest
-- updated_at): first reply time in seconds, assignment, solve and last status change.
{{ config(unique_key='ticket_metric_id') }}

with

newest_raw as (
    {{ latest_version(source('raw', 'email_metric_sets'), from_iso8601("record_version")) }}
),

latest as (
    {{ parse_json('newest_raw', {
        'updated_at': '$.updated_at',
        'id': '$.id',
        'ticket_id': '$.ticket_id',
        'reply_time_in_seconds__calendar': '$.reply_time_in_seconds.calendar',
        'replies': '$.replies',
        'reopens': '$.reopens',
        'created_at': '$.created_at',
        'assigned_at': '$.assigned_at',
        'solved_at': '$.solved_at',
        'status_updated_at': '$.status_updated_at',
    }) }}
),

renamed as (
    select
        -- ids
        id as ticket_metric_id,
        ticket_id,

        -- numerics
        try_cast(reply_time_in_seconds__calendar as bigint) as reply_seconds,
        try_cast(replies as integer) as replies,
        try_cast(reopens as integer) as reopens,

        -- timestamps
        {{ from_iso8601("created_at") }} as created_at,
        {{ from_iso8601("assigned_at") }} as assigned_at,
        {{ from_iso8601("solved_at") }} as solved_at,
        {{ from_iso8601("status_updated_at") }} as status_updated_at,
        {{ from_iso8601("updated_at") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

-- Zendesk ticket metric sets (sideloaded with the tickets), one row per ticket (newest
-- updated_at): first reply time in seconds, assignment, solve and last status change.
{{ config(unique_key='ticket_metric_id') }}

with

source as (
    select * from {{ source('raw', 'email_metric_sets') }}
),

latest as (
    {{ latest_version('source', from_iso8601("raw_json ->> '$.updated_at'")) }}
),

renamed as (
    select
        -- ids
        raw_json ->> '$.id' as ticket_metric_id,
        raw_json ->> '$.ticket_id' as ticket_id,

        -- numerics
        try_cast(raw_json ->> '$.reply_time_in_seconds.calendar' as bigint) as reply_seconds,
        try_cast(raw_json ->> '$.replies' as integer) as replies,
        try_cast(raw_json ->> '$.reopens' as integer) as reopens,

        -- timestamps
        {{ from_iso8601("raw_json ->> '$.created_at'") }} as created_at,
        {{ from_iso8601("raw_json ->> '$.assigned_at'") }} as assigned_at,
        {{ from_iso8601("raw_json ->> '$.solved_at'") }} as solved_at,
        {{ from_iso8601("raw_json ->> '$.status_updated_at'") }} as status_updated_at,
        {{ from_iso8601("raw_json ->> '$.updated_at'") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

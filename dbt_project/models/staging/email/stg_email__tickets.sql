-- Zendesk tickets, one row per ticket id (newest updated_at, ISO 8601). The customer's
-- address is the sender of an inbound ticket (via.source.from) and the recipient of one we
-- opened (via.source.to); protocol, phone and time spent are custom fields; the topic is the
-- ticket's tag.
{{ config(unique_key='ticket_id') }}

with

newest_raw as (
    {{ latest_version(source('raw', 'email_tickets'), from_iso8601("record_version")) }}
),

latest as (
    {{ parse_json('newest_raw', {
        'updated_at': '$.updated_at',
        'id': '$.id',
        'description': '$.description',
        'via__channel': '$.via.channel',
        'status': '$.status',
        'tags_0': '$.tags[0]',
        'via__source__to__address': '$.via.source.to.address',
        'via__source__from__address': '$.via.source.from.address',
        'created_at': '$.created_at',
        'custom_fields_json': '$.custom_fields',
    }) }}
),

custom_fields as (
    select
        record_id,
        max(field.value ->> '$.value') filter (
            where (field.value ->> '$.id') = '{{ var("zendesk_protocol_field_id") }}'
        ) as protocol,
        max(field.value ->> '$.value') filter (
            where (field.value ->> '$.id') = '{{ var("zendesk_phone_field_id") }}'
        ) as phone_raw,
        max(field.value ->> '$.value') filter (
            where (field.value ->> '$.id') = '{{ var("zendesk_time_spent_field_id") }}'
        ) as time_spent,
    from latest, json_each(latest.custom_fields_json::json) as field
    group by record_id
),

renamed as (
    select
        -- ids
        'email:' || latest.id as contact_id,
        latest.id as ticket_id,
        coalesce(
            nullif(trim(custom_fields.protocol), ''),
            nullif(regexp_extract(latest.description, '{{ var("protocol_pattern") }}', 1), '')
        ) as request_ref,

        -- strings
        case when latest.via__channel = 'web' then 'outbound' else 'inbound' end
            as direction,
        latest.status,
        nullif(trim(latest.tags_0), '') as source_topic,
        {{ normalized_email(
            "case when latest.via__channel = 'web'"
            ~ " then latest.via__source__to__address"
            ~ " else latest.via__source__from__address end"
        ) }} as email,
        custom_fields.phone_raw,
        {{ normalized_phone('custom_fields.phone_raw') }} as phone,

        -- numerics
        try_cast(custom_fields.time_spent as bigint) as handle_seconds,

        -- booleans
        latest.status in ('solved', 'closed') as is_solved,
        latest.status in ('solved', 'closed', 'pending') as is_ended,

        -- timestamps
        {{ from_iso8601("latest.created_at") }} as created_at,
        {{ from_iso8601("latest.updated_at") }} as updated_at,
        latest.validated_at,
    from latest
    left join custom_fields
        on latest.record_id = custom_fields.record_id
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

-- Twilio messages, one row per message sid (newest date_updated). Dates are RFC 2822,
-- numbers are strings. The customer's phone is `from` on inbound and `to` on outbound
-- messages, the company's number (a long code of the sticky-sender pool) the other side;
-- company messages carry the messaging service (agents or bot).
{{ config(unique_key='message_id') }}

with

source as (
    select * from {{ source('raw', 'sms_messages') }}
),

latest as (
    {{ latest_version('source', from_rfc2822("raw_json ->> '$.date_updated'")) }}
),

renamed as (
    select
        -- ids
        raw_json ->> '$.sid' as message_id,
        raw_json ->> '$.messaging_service_sid' as messaging_service_sid,

        -- strings
        raw_json ->> '$.direction' as vendor_direction,
        raw_json ->> '$.body' as body,
        case
            when raw_json ->> '$.direction' = 'inbound' then raw_json ->> '$.from'
            else raw_json ->> '$.to'
        end as customer_phone_raw,
        case
            when raw_json ->> '$.direction' = 'inbound' then raw_json ->> '$.to'
            else raw_json ->> '$.from'
        end as company_phone,
        {{ normalized_phone(
            "case when raw_json ->> '$.direction' = 'inbound' then raw_json ->> '$.from'"
            ~ " else raw_json ->> '$.to' end"
        ) }} as customer_phone,

        -- numerics
        try_cast(raw_json ->> '$.num_segments' as integer) as segments,
        try_cast(raw_json ->> '$.price' as decimal(18, 5)) as price,

        -- booleans
        raw_json ->> '$.direction' = 'inbound' as is_from_customer,
        raw_json ->> '$.messaging_service_sid' = '{{ var("sms_agent_messaging_service") }}'
            as is_from_agent,
        starts_with(raw_json ->> '$.body', '{{ var("thread_closing_prefix") }}') as is_closing,
        starts_with(raw_json ->> '$.body', '{{ var("thread_closing_prefix") }}')
        and contains(raw_json ->> '$.body', '{{ var("thread_resolved_marker") }}') as is_resolving,

        -- timestamps
        {{ from_rfc2822("raw_json ->> '$.date_sent'") }} as sent_at,
        {{ from_rfc2822("raw_json ->> '$.date_updated'") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

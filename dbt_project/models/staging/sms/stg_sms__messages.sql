-- Twilio messages, one row per message sid (newest date_updated). Dates are RFC 2822,
-- numbers are strings. The customer's phone is `from` on inbound and `to` on outbound
-- messages, the company's number (a long code of the sticky-sender pool) the other side;
-- company messages carry the messaging service (agents or bot).
{{ config(unique_key='message_id') }}

with

newest_raw as (
    {{ latest_version(source('raw', 'sms_messages'), from_rfc2822("record_version")) }}
),

latest as (
    {{ parse_json('newest_raw', {
        'date_updated': '$.date_updated',
        'sid': '$.sid',
        'messaging_service_sid': '$.messaging_service_sid',
        'direction': '$.direction',
        'body': '$.body',
        'from_number': '$.from',
        'to_number': '$.to',
        'num_segments': '$.num_segments',
        'price': '$.price',
        'date_sent': '$.date_sent',
    }) }}
),

renamed as (
    select
        -- ids
        sid as message_id,
        messaging_service_sid,

        -- strings
        direction as vendor_direction,
        body,
        case
            when direction = 'inbound' then from_number
            else to_number
        end as customer_phone_raw,
        case
            when direction = 'inbound' then to_number
            else from_number
        end as company_phone,
        {{ normalized_phone(
            "case when direction = 'inbound' then from_number"
            ~ " else to_number end"
        ) }} as customer_phone,

        -- numerics
        try_cast(num_segments as integer) as segments,
        try_cast(price as decimal(18, 5)) as price,

        -- booleans
        direction = 'inbound' as is_from_customer,
        messaging_service_sid = '{{ var("sms_agent_messaging_service") }}'
            as is_from_agent,
        starts_with(body, '{{ var("thread_closing_prefix") }}') as is_closing,
        starts_with(body, '{{ var("thread_closing_prefix") }}')
        and contains(body, '{{ var("thread_resolved_marker") }}') as is_resolving,

        -- timestamps
        {{ from_rfc2822("date_sent") }} as sent_at,
        {{ from_rfc2822("date_updated") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

-- One row per SMS contact (a thread), rebuilt from Twilio's individual messages. Twilio has no
-- conversation object, but the company sends from a sticky-sender pool: a thread is the
-- messages between one customer number and one company number, and two threads of one
-- customer that overlap in time never share a company number (docs/demo-apis.md). So messages
-- are grouped by (customer number, company number) and cut at openings: an `outbound-api`
-- message, an inbound message opening with an SMS keyword (first word in capitals or digits),
-- or the first message after a closing text. Every message belongs to the latest opening at or
-- before it (an opening sorts first among equal send times). A silence rule would cut threads
-- whose reply came hours later; keying on the customer number alone would interleave
-- overlapping threads. The contact is named after its first message: `sms:<sid>`.
--
-- Incremental: a build sessionizes again the pairs with a message validated since the last
-- complete build (macro sms_changed_pairs), whole, and replaces their threads
-- (docs/dbt.md, "The scoped identity chain", item 0). thread_key and sender_key name the pair.
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_changed(sms_pair_key('thread_key', 'null', 'sender_key'), sms_changed_pairs()) }}",
    )
}}
with

messages as (
    select *
    from {{ ref('stg_sms__messages') }}
    where {{ sms_pair_key('customer_phone', 'customer_phone_raw', 'company_phone') }}
        in ({{ sms_changed_pairs() }})
),

ordered as (
    select
        *,
        coalesce(customer_phone, customer_phone_raw) as thread_key,
        coalesce(company_phone, '') as sender_key,
        vendor_direction = 'outbound-api'
        or (
            is_from_customer
            and regexp_full_match(split_part(trim(body), ' ', 1), '{{ var("sms_keyword_pattern") }}')
        ) as is_opening,
    from messages
),

sortable as (
    select
        *,
        -- among equal send times: openings first, closing texts last
        not coalesce(is_opening, false) as sort_after_opening,
    from ordered
),

flagged as (
    select
        *,
        coalesce(is_opening or lag(is_closing) over thread_order, true) as starts_thread,
    from sortable
    window thread_order as (
        partition by thread_key, sender_key
        order by sent_at, sort_after_opening, is_closing, message_id
    )
),

numbered as (
    select
        *,
        sum(starts_thread::integer) over (
            partition by thread_key, sender_key
            order by sent_at, sort_after_opening, is_closing, message_id
            rows between unbounded preceding and current row
        ) as thread_number,
    from flagged
),

threads as (
    select
        thread_key,
        sender_key,
        thread_number,
        arg_min(message_id, (sent_at, sort_after_opening, is_closing, message_id)) as source_id,
        arg_min(is_from_customer, (sent_at, sort_after_opening, is_closing, message_id)) as is_inbound,
        arg_min(body, (sent_at, sort_after_opening, is_closing, message_id)) as opening_body,
        arg_min(customer_phone_raw, (sent_at, sort_after_opening, is_closing, message_id)) as phone_raw,
        arg_min(customer_phone, (sent_at, sort_after_opening, is_closing, message_id)) as phone,
        min(sent_at) as started_at,
        min(sent_at) filter (where not is_from_customer and not is_closing) as first_response_at,
        min(sent_at) filter (where not is_from_customer and not is_closing and is_from_agent)
            as first_agent_response_at,
        min(sent_at) filter (where is_closing) as ended_at,
        bool_or(is_resolving) as is_resolved,
        count(*) filter (where not is_from_customer and not is_closing) as company_messages,
        count(*) filter (where not is_from_customer and not is_closing and is_from_agent)
            as agent_messages,
        max(validated_at) as validated_at,
    from numbered
    group by thread_key, sender_key, thread_number
),

harmonized as (
    select
        'sms:' || source_id as contact_id,
        source_id,
        'sms' as channel,
        case when is_inbound then 'inbound' else 'outbound' end as direction,
        case when company_messages > 0 and agent_messages = 0 then 'bot' else 'agent' end
            as handled_by,
        started_at,
        first_response_at,
        first_agent_response_at,
        null::bigint as queue_seconds,
        is_inbound and ended_at is not null and first_response_at is null as is_abandoned,
        ended_at,
        null::bigint as handle_seconds,
        nullif(split_part(trim(opening_body), ' ', 1), '') as source_topic,
        nullif(regexp_extract(opening_body, '{{ var("protocol_pattern") }}', 1), '') as request_ref,
        coalesce(is_resolved, false) as is_resolved,
        null::varchar as email,
        phone_raw,
        phone,
        null::varchar as messenger_psid,
        null::varchar as chat_contact_id,
        null::varchar as crm_id,
        -- the latest of every message between the two numbers, not only the thread's: a new
        -- or changed message can move the cuts of the pair's other threads, and the scoped
        -- identity rebuild takes a contact as changed by this (docs/dbt.md)
        max(validated_at) over (partition by thread_key, sender_key) as validated_at,
        thread_key,
        sender_key,
    from threads
)

select * from harmonized

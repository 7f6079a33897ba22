-- One row per Messenger contact (a page conversation) with its timings from its messages:
-- started at the first message, first response = first page message that is not the closing
-- message, first agent response = the same without the bot's messages (tagged
-- var('messenger_bot_tag') by the bot app), ended at the closing message. Handled by the bot
-- when the page answered and every answer came from the bot (the SMS rule). Protocol numbers
-- are quoted in message text. A conversation whose messages have not been landed yet has no
-- start and is left out until they are.
--
-- Incremental: a build replaces the conversations whose row or a message was validated since
-- the last complete build (macro messenger_changed_conversations; docs/dbt.md, "The scoped
-- identity chain", item 0).
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_changed('source_id', messenger_changed_conversations()) }}",
    )
}}
with

conversations as (
    select *
    from {{ ref('stg_messenger__conversations') }}
    where conversation_id in ({{ messenger_changed_conversations() }})
),

messages as (
    select *
    from {{ ref('stg_messenger__messages') }}
    where conversation_id in ({{ messenger_changed_conversations() }})
),

message_facts as (
    select
        conversation_id,
        min(sent_at) as started_at,
        arg_min(not is_from_page, (sent_at, is_closing, message_id)) as is_inbound,
        min(sent_at) filter (where is_from_page and not is_closing) as first_response_at,
        min(sent_at) filter (where is_from_page and not is_closing and not is_from_bot)
            as first_agent_response_at,
        count(*) filter (where is_from_page and not is_closing) as page_messages,
        count(*) filter (where is_from_page and not is_closing and not is_from_bot)
            as agent_messages,
        min(sent_at) filter (where is_closing) as ended_at,
        bool_or(is_resolving) as is_resolved,
        min(regexp_extract(message, '{{ var("protocol_pattern") }}', 1))
            filter (where regexp_matches(message, '{{ var("protocol_pattern") }}')) as request_ref,
        max(validated_at) as validated_at,
    from messages
    group by conversation_id
),

harmonized as (
    select
        'messenger:' || conversations.conversation_id as contact_id,
        conversations.conversation_id as source_id,
        'messenger' as channel,
        case when message_facts.is_inbound then 'inbound' else 'outbound' end as direction,
        case
            when message_facts.page_messages > 0 and message_facts.agent_messages = 0 then 'bot'
            else 'agent'
        end as handled_by,
        message_facts.started_at,
        message_facts.first_response_at,
        message_facts.first_agent_response_at,
        null::bigint as queue_seconds,
        message_facts.is_inbound
        and message_facts.ended_at is not null
        and message_facts.first_response_at is null as is_abandoned,
        message_facts.ended_at,
        null::bigint as handle_seconds,
        conversations.source_topic,
        message_facts.request_ref,
        coalesce(message_facts.is_resolved, false) as is_resolved,
        conversations.email,
        null::varchar as phone_raw,
        null::varchar as phone,
        conversations.messenger_psid,
        null::varchar as chat_contact_id,
        null::varchar as crm_id,
        greatest(conversations.validated_at, message_facts.validated_at) as validated_at,
    from conversations
    inner join message_facts
        on conversations.conversation_id = message_facts.conversation_id
)

select * from harmonized

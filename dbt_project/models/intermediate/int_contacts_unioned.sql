-- One row per contact from every channel in the harmonized columns of model spec section 2
-- (minus customer_id, request_id, cost) plus its normalized identifiers: the boundary between
-- vendor-specific staging and the identity / request rules.
--
-- Incremental: a build replaces the contacts with a source row validated since the last
-- complete build (macro unioned_changed_contacts), and drops SMS threads that are gone (a
-- pair sessionized again can cut its messages into other threads; docs/dbt.md, "The scoped
-- identity chain", item 0).
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ delete_changed('contact_id', unioned_changed_contacts()) }}",
            "{% if is_incremental() %}delete from {{ this }} as unioned where channel = 'sms' and not exists (select 1 from {{ ref('int_sms_contacts_sessionized') }} as threads where threads.contact_id = unioned.contact_id){% endif %}",
        ],
    )
}}
with

voice_contacts as (
    select * from {{ ref('stg_voice__contacts') }} where {{ validated_since() }}
),

sms_contacts as (
    select * from {{ ref('int_sms_contacts_sessionized') }} where {{ validated_since() }}
),

email_tickets as (
    {{ changed_email_tickets() }}
),

email_ticket_metrics as (
    select * from {{ ref('stg_email__ticket_metrics') }}
),

chat_conversations as (
    select * from {{ ref('stg_chat__conversations') }} where {{ validated_since() }}
),

messenger_contacts as (
    select * from {{ ref('int_messenger_contacts_aggregated') }} where {{ validated_since() }}
),

topic_map as (
    select * from {{ ref('topic_map') }}
),

email_contacts as (
    select
        email_tickets.contact_id,
        email_tickets.ticket_id as source_id,
        'email' as channel,
        email_tickets.direction,
        'agent' as handled_by,
        email_tickets.created_at as started_at,
        email_tickets.created_at + to_seconds(email_ticket_metrics.reply_seconds)
            as first_response_at,
        email_tickets.created_at + to_seconds(email_ticket_metrics.reply_seconds)
            as first_agent_response_at,
        null::bigint as queue_seconds,
        email_tickets.direction = 'inbound'
        and email_tickets.is_ended
        and email_ticket_metrics.reply_seconds is null as is_abandoned,
        case when email_tickets.is_ended then email_ticket_metrics.status_updated_at end
            as ended_at,
        email_tickets.handle_seconds,
        email_tickets.source_topic,
        email_tickets.request_ref,
        email_tickets.is_solved as is_resolved,
        email_tickets.email,
        email_tickets.phone_raw,
        email_tickets.phone,
        null::varchar as messenger_psid,
        null::varchar as chat_contact_id,
        null::varchar as crm_id,
        -- either row's update changes the contact
        greatest(email_tickets.validated_at, email_ticket_metrics.validated_at) as validated_at,
    from email_tickets
    left join email_ticket_metrics
        on email_tickets.ticket_id = email_ticket_metrics.ticket_id
),

unioned as (
    select * from voice_contacts
    union all by name
    select * from sms_contacts
    union all by name
    select * from email_contacts
    union all by name
    select * from chat_conversations
    union all by name
    select * from messenger_contacts
),

harmonized as (
    select
        unioned.contact_id,
        unioned.channel,
        unioned.source_id,
        unioned.direction,
        unioned.handled_by,
        unioned.started_at,
        unioned.first_response_at,
        unioned.first_agent_response_at,
        unioned.queue_seconds,
        coalesce(unioned.is_abandoned, false) as abandoned,
        unioned.ended_at,
        unioned.handle_seconds,
        unioned.source_topic,
        coalesce(topic_map.topic, 'unmapped') as topic,
        unioned.request_ref,
        coalesce(unioned.is_resolved, false) as resolved,
        unioned.email,
        unioned.phone,
        unioned.messenger_psid,
        unioned.chat_contact_id,
        unioned.crm_id,
        unioned.validated_at,
    from unioned
    left join topic_map
        on unioned.channel = topic_map.channel
        and unioned.source_topic = topic_map.source_topic
    where unioned.started_at is not null
)

select * from harmonized

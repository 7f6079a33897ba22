-- One row per contact from every channel in the harmonized columns of model spec section 2
-- (minus customer_id, request_id, cost) plus its normalized identifiers: the boundary between
-- vendor-specific staging and the identity / request rules.
with

voice_contacts as (
    select * from {{ ref('stg_voice__contacts') }}
),

sms_contacts as (
    select * from {{ ref('int_sms_contacts_sessionized') }}
),

email_tickets as (
    select * from {{ ref('stg_email__tickets') }}
),

email_ticket_metrics as (
    select * from {{ ref('stg_email__ticket_metrics') }}
),

chat_conversations as (
    select * from {{ ref('stg_chat__conversations') }}
),

messenger_contacts as (
    select * from {{ ref('int_messenger_contacts_aggregated') }}
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

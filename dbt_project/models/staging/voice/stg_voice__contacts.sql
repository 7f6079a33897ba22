-- Amazon Connect contact records -> one harmonized voice contact per ContactId (newest
-- LastUpdateTimestamp). Connect times are epoch seconds; disposition, protocol, crm_id and
-- resolution live in the contact-flow Attributes.
{{ config(unique_key='contact_id') }}

with

newest_raw as (
    {{ latest_version(source('raw', 'voice_contacts'), from_epoch("record_version")) }}
),

latest as (
    {{ parse_json('newest_raw', {
        'last_update_timestamp': '$.LastUpdateTimestamp',
        'connect_contact_id': '$.ContactId',
        'attributes__protocol': '$.Attributes.protocol',
        'attributes__crm_id': '$.Attributes.crm_id',
        'initiation_method': '$.InitiationMethod',
        'attributes__disposition': '$.Attributes.disposition',
        'customer_endpoint__address': '$.CustomerEndpoint.Address',
        'queue__duration': '$.Queue.Duration',
        'agent__agent_interaction_duration': '$.Agent.AgentInteractionDuration',
        'attributes__resolved': '$.Attributes.resolved',
        'disconnect_timestamp': '$.DisconnectTimestamp',
        'agent__connected_to_agent_timestamp': '$.Agent.ConnectedToAgentTimestamp',
        'initiation_timestamp': '$.InitiationTimestamp',
    }) }}
),

renamed as (
    select
        -- ids
        'voice:' || connect_contact_id as contact_id,
        connect_contact_id as source_id,
        nullif(trim(attributes__protocol), '') as request_ref,
        nullif(trim(attributes__crm_id), '') as crm_id,

        -- strings
        'voice' as channel,
        case
            when upper(initiation_method) in ('OUTBOUND', 'CALLBACK', 'API')
                then 'outbound'
            else 'inbound'
        end as direction,
        'agent' as handled_by,
        nullif(trim(attributes__disposition), '') as source_topic,
        customer_endpoint__address as phone_raw,
        {{ normalized_phone("customer_endpoint__address") }} as phone,
        null::varchar as email,
        null::varchar as messenger_psid,
        null::varchar as chat_contact_id,

        -- numerics
        try_cast(queue__duration as bigint) as queue_seconds,
        try_cast(agent__agent_interaction_duration as bigint) as handle_seconds,

        -- booleans
        coalesce(lower(attributes__resolved) = 'true', false) as is_resolved,
        coalesce(
            upper(initiation_method) not in ('OUTBOUND', 'CALLBACK', 'API')
            and (disconnect_timestamp) is not null
            and (agent__connected_to_agent_timestamp) is null,
            false
        ) as is_abandoned,

        -- timestamps
        {{ from_epoch("initiation_timestamp") }} as started_at,
        {{ from_epoch("agent__connected_to_agent_timestamp") }} as first_response_at,
        {{ from_epoch("agent__connected_to_agent_timestamp") }}
            as first_agent_response_at,
        {{ from_epoch("disconnect_timestamp") }} as ended_at,
        {{ from_epoch("last_update_timestamp") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

-- Amazon Connect contact records -> one harmonized voice contact per ContactId (newest
-- LastUpdateTimestamp). Connect times are epoch seconds; disposition, protocol, crm_id and
-- resolution live in the contact-flow Attributes.
{{ config(unique_key='contact_id') }}

with

source as (
    select * from {{ source('raw', 'voice_contacts') }}
),

latest as (
    {{ latest_version('source', from_epoch("raw_json ->> '$.LastUpdateTimestamp'")) }}
),

renamed as (
    select
        -- ids
        'voice:' || (raw_json ->> '$.ContactId') as contact_id,
        raw_json ->> '$.ContactId' as source_id,
        nullif(trim(raw_json ->> '$.Attributes.protocol'), '') as request_ref,
        nullif(trim(raw_json ->> '$.Attributes.crm_id'), '') as crm_id,

        -- strings
        'voice' as channel,
        case
            when upper(raw_json ->> '$.InitiationMethod') in ('OUTBOUND', 'CALLBACK', 'API')
                then 'outbound'
            else 'inbound'
        end as direction,
        'agent' as handled_by,
        nullif(trim(raw_json ->> '$.Attributes.disposition'), '') as source_topic,
        raw_json ->> '$.CustomerEndpoint.Address' as phone_raw,
        {{ normalized_phone("raw_json ->> '$.CustomerEndpoint.Address'") }} as phone,
        null::varchar as email,
        null::varchar as messenger_psid,
        null::varchar as chat_contact_id,

        -- numerics
        try_cast(raw_json ->> '$.Queue.Duration' as bigint) as queue_seconds,
        try_cast(raw_json ->> '$.Agent.AgentInteractionDuration' as bigint) as handle_seconds,

        -- booleans
        coalesce(lower(raw_json ->> '$.Attributes.resolved') = 'true', false) as is_resolved,
        coalesce(
            upper(raw_json ->> '$.InitiationMethod') not in ('OUTBOUND', 'CALLBACK', 'API')
            and (raw_json ->> '$.DisconnectTimestamp') is not null
            and (raw_json ->> '$.Agent.ConnectedToAgentTimestamp') is null,
            false
        ) as is_abandoned,

        -- timestamps
        {{ from_epoch("raw_json ->> '$.InitiationTimestamp'") }} as started_at,
        {{ from_epoch("raw_json ->> '$.Agent.ConnectedToAgentTimestamp'") }} as first_response_at,
        {{ from_epoch("raw_json ->> '$.Agent.ConnectedToAgentTimestamp'") }}
            as first_agent_response_at,
        {{ from_epoch("raw_json ->> '$.DisconnectTimestamp'") }} as ended_at,
        {{ from_epoch("raw_json ->> '$.LastUpdateTimestamp'") }} as updated_at,
        validated_at,
    from latest
),

replacing as (
    {{ keep_newer_versions('renamed', 'updated_at') }}
)

select * from replacing

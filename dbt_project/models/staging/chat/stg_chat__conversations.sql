-- Intercom conversations, one row per id (newest updated_at, unix seconds). A conversation
-- the AI agent (bot) handled without routing it to a team is handled_by bot; the first
-- response is the earlier of the bot's first reply (custom attribute) and the first admin
-- reply. Intent, protocol, phone, e-mail and resolution are custom attributes.
{{ config(unique_key='contact_id') }}

with

source as (
    select * from {{ source('raw', 'chat_conversations') }}
),

latest as (
    {{ latest_version('source', from_epoch("raw_json ->> '$.updated_at'")) }}
),

renamed as (
    select
        -- ids
        'chat:' || (raw_json ->> '$.id') as contact_id,
        raw_json ->> '$.id' as source_id,
        raw_json ->> '$.contacts.contacts[0].id' as chat_contact_id,
        nullif(trim(raw_json ->> '$.custom_attributes.protocol'), '') as request_ref,

        -- strings
        'chat' as channel,
        case
            when (raw_json ->> '$.source.delivered_as') = 'customer_initiated' then 'inbound'
            else 'outbound'
        end as direction,
        case
            when coalesce((raw_json ->> '$.ai_agent_participated')::boolean, false)
                and coalesce(raw_json ->> '$.ai_agent.resolution_state', '') <> 'routed_to_team'
                then 'bot'
            else 'agent'
        end as handled_by,
        nullif(trim(raw_json ->> '$.custom_attributes.intent'), '') as source_topic,
        {{ normalized_email("coalesce(raw_json ->> '$.custom_attributes.email', raw_json ->> '$.source.author.email')") }}
            as email,
        raw_json ->> '$.custom_attributes.phone' as phone_raw,
        {{ normalized_phone("raw_json ->> '$.custom_attributes.phone'") }} as phone,
        null::varchar as messenger_psid,
        null::varchar as crm_id,

        -- numerics
        null::bigint as queue_seconds,
        try_cast(raw_json ->> '$.statistics.handling_time' as bigint) as handle_seconds,

        -- booleans
        coalesce(try_cast(raw_json ->> '$.custom_attributes.resolved' as boolean), false)
            as is_resolved,

        -- timestamps
        {{ from_epoch("raw_json ->> '$.created_at'") }} as started_at,
        least(
            {{ from_epoch("raw_json ->> '$.custom_attributes.first_bot_reply_at'") }},
            {{ from_epoch("raw_json ->> '$.statistics.first_admin_reply_at'") }}
        ) as first_response_at,
        {{ from_epoch("raw_json ->> '$.statistics.first_admin_reply_at'") }}
            as first_agent_response_at,
        {{ from_epoch("coalesce(raw_json ->> '$.statistics.last_close_at', raw_json ->> '$.statistics.first_close_at')") }}
            as ended_at,
        {{ from_epoch("raw_json ->> '$.updated_at'") }} as updated_at,
        validated_at,
    from latest
),

final as (
    select
        *,
        direction = 'inbound' and ended_at is not null and first_response_at is null
            as is_abandoned,
    from renamed
),

replacing as (
    {{ keep_newer_versions('final', 'updated_at') }}
)

select * from replacing

-- Intercom conversations, one row per id (newest updated_at, unix seconds). A conversation
-- the AI agent (bot) handled without routing it to a team is handled_by bot; the first
-- response is the earlier of the bot's first reply (custom attribute) and the first admin
-- reply. Intent, protocol, phone, e-mail and resolution are custom attributes.
{{ config(unique_key='contact_id') }}

with

newest_raw as (
    {{ latest_version(source('raw', 'chat_conversations'), from_epoch("record_version")) }}
),

latest as (
    {{ parse_json('newest_raw', {
        'updated_at': '$.updated_at',
        'id': '$.id',
        'contacts__contacts_0__id': '$.contacts.contacts[0].id',
        'custom_attributes__protocol': '$.custom_attributes.protocol',
        'source__delivered_as': '$.source.delivered_as',
        'ai_agent_participated': '$.ai_agent_participated',
        'ai_agent__resolution_state': '$.ai_agent.resolution_state',
        'custom_attributes__intent': '$.custom_attributes.intent',
        'custom_attributes__email': '$.custom_attributes.email',
        'source__author__email': '$.source.author.email',
        'custom_attributes__phone': '$.custom_attributes.phone',
        'statistics__handling_time': '$.statistics.handling_time',
        'custom_attributes__resolved': '$.custom_attributes.resolved',
        'created_at': '$.created_at',
        'custom_attributes__first_bot_reply_at': '$.custom_attributes.first_bot_reply_at',
        'statistics__first_admin_reply_at': '$.statistics.first_admin_reply_at',
        'statistics__last_close_at': '$.statistics.last_close_at',
        'statistics__first_close_at': '$.statistics.first_close_at',
    }) }}
),

renamed as (
    select
        -- ids
        'chat:' || id as contact_id,
        id as source_id,
        contacts__contacts_0__id as chat_contact_id,
        nullif(trim(custom_attributes__protocol), '') as request_ref,

        -- strings
        'chat' as channel,
        case
            when source__delivered_as = 'customer_initiated' then 'inbound'
            else 'outbound'
        end as direction,
        case
            when coalesce((ai_agent_participated)::boolean, false)
                and coalesce(ai_agent__resolution_state, '') <> 'routed_to_team'
                then 'bot'
            else 'agent'
        end as handled_by,
        nullif(trim(custom_attributes__intent), '') as source_topic,
        {{ normalized_email("coalesce(custom_attributes__email, source__author__email)") }}
            as email,
        custom_attributes__phone as phone_raw,
        {{ normalized_phone("custom_attributes__phone") }} as phone,
        null::varchar as messenger_psid,
        null::varchar as crm_id,

        -- numerics
        null::bigint as queue_seconds,
        try_cast(statistics__handling_time as bigint) as handle_seconds,

        -- booleans
        coalesce(try_cast(custom_attributes__resolved as boolean), false)
            as is_resolved,

        -- timestamps
        {{ from_epoch("created_at") }} as started_at,
        least(
            {{ from_epoch("custom_attributes__first_bot_reply_at") }},
            {{ from_epoch("statistics__first_admin_reply_at") }}
        ) as first_response_at,
        {{ from_epoch("statistics__first_admin_reply_at") }}
            as first_agent_response_at,
        {{ from_epoch("coalesce(statistics__last_close_at, statistics__first_close_at)") }}
            as ended_at,
        {{ from_epoch("updated_at") }} as updated_at,
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

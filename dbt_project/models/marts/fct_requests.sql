-- One row per unified request (model spec section 4): a connected component of request
-- links, described by its contacts in (started_at, contact_id) order.
--
-- Incremental: a build replaces the requests of int_mart_scope_requests (docs/dbt.md, "The
-- scoped identity chain", item 10), each computed over all of its contacts. The topics seed
-- is in int_identity_build's settings fingerprint. On a full build the scope is every
-- request and the filters are left out (macro writes_every_row).
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('request_id', 'int_mart_scope_requests') }}",
    )
}}
with

scope as not materialized (
    select * from {{ ref('int_mart_scope_requests') }}
),

contacts as (
    select *
    from {{ ref('fct_contacts') }}
    {% if not full %}where request_id in (select request_id from scope){% endif %}
),

topics as (
    select * from {{ ref('topics') }}
),

surveys as (
    select * from {{ ref('fct_survey_responses') }}
),

ordered as (
    select
        *,
        row_number() over (partition by request_id order by started_at, contact_id) as position,
    from contacts
),

follow_ups as (
    select
        request_id,
        min(answered_at) as followed_up_at,
    from surveys
    {% if not full %}where request_id in (select request_id from scope){% endif %}
    group by request_id
),

aggregated as (
    select
        request_id,
        arg_min(customer_id, position) as customer_id,
        coalesce(
            arg_min(topic, position) filter (where topic <> 'unmapped'),
            'unmapped'
        ) as topic,
        min(started_at) as opened_at,
        arg_min(channel, position) as first_channel,
        arg_max(channel, position) as last_channel,
        count(*) as contacts,
        count(distinct channel) as channels,
        bool_or(coalesce(resolved, false)) as resolved,
        sum(cost) as cost,
        sum(cost) filter (where position > 1) as avoidable_cost,
        -- the first inbound and the first resolved contact (arg_min_null: a NULL value is
        -- the answer, where arg_min would skip to the next contact). In this one aggregate,
        -- not two more windows over `ordered`: at 5M contacts 20.4 s -> 11.9 s
        -- (docs/performance.md, twenty-first round)
        arg_min_null(
            {{ seconds_between('started_at', 'first_response_at') }}, position
        ) filter (where direction = 'inbound') as first_response_seconds,
        arg_min_null(ended_at, position) filter (where resolved) as resolved_at,
    from ordered
    group by request_id
),

final as (
    select
        aggregated.request_id,
        aggregated.customer_id,
        aggregated.topic,
        topics.journey_stage,
        aggregated.opened_at,
        aggregated.first_channel,
        aggregated.last_channel,
        aggregated.contacts,
        aggregated.channels,
        aggregated.channels > 1 as cross_channel,
        aggregated.first_response_seconds,
        aggregated.resolved,
        aggregated.resolved_at,
        {{ seconds_between('aggregated.opened_at', 'aggregated.resolved_at') }}
            as resolution_seconds,
        aggregated.contacts = 1 and aggregated.resolved as fcr,
        aggregated.cost::decimal(18, 4) as cost,
        coalesce(aggregated.avoidable_cost, 0)::decimal(18, 4) as avoidable_cost,
        follow_ups.followed_up_at,
    from aggregated
    left join topics
        on aggregated.topic = topics.topic
    left join follow_ups
        on aggregated.request_id = follow_ups.request_id
)

select * from final

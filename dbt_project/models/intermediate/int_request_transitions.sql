-- One row per contact that follows another in its request (model spec section 6, channel
-- switches): the channel of the contact before it and its own, in (started_at, contact_id)
-- order, and the seconds between the two starts. mart_channel_transitions counts them per
-- month of the later contact; same-channel pairs are kept.
--
-- Incremental: a build replaces the requests of int_mart_scope_requests (docs/dbt.md, "The
-- scoped identity chain", item 10). A request's pairs depend on its own contacts alone, and
-- every request whose contacts changed is in that scope, as for fct_requests. When this
-- table is created (a first build, a dropped table) it takes every request; so the metric
-- marts can be built on fct_contacts alone (tests/conftest.py).
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_mart_scope_requests') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('request_id', 'int_mart_scope_requests') }}",
    )
}}
with

contacts as (
    select request_id, contact_id, channel, started_at,
    from {{ ref('fct_contacts') }}
    {% if not takes_every_row() %}
    where request_id in (select request_id from {{ ref('int_mart_scope_requests') }})
    {% endif %}
),

ordered as (
    select
        request_id,
        contact_id,
        lag(channel) over request_order as from_channel,
        channel as to_channel,
        started_at,
        {{ seconds_between('lag(started_at) over request_order', 'started_at') }}
            as gap_seconds,
        row_number() over request_order as position,
    from contacts
    window request_order as (partition by request_id order by started_at, contact_id)
),

final as (
    select
        request_id,
        contact_id,
        from_channel,
        to_channel,
        started_at,
        gap_seconds::double as gap_seconds,
    from ordered
    where position > 1
)

select * from final

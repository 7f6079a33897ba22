-- One row per contact, harmonized across channels (model spec section 2), with its unified
-- customer, unified request and cost.
--
-- Incremental: a build replaces the contacts of int_mart_scope_contacts: those whose row
-- int_contacts_stitched_to_requests changed (docs/dbt.md, "The scoped identity chain", items
-- 10 and 12), and those of new survey answers (written again as they were). The
-- channel_costs seed is in int_identity_build's settings fingerprint: a change makes the build
-- full. On a full build the scope is every contact and the filter is left out (macro
-- writes_every_row).
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_mart_scope_contacts') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('contact_id', 'int_mart_scope_contacts') }}",
    )
}}
with

contacts as (
    select *
    from {{ ref('int_contacts_stitched_to_requests') }}
    {% if not full -%}
    where contact_id in (select contact_id from {{ ref('int_mart_scope_contacts') }})
    {%- endif %}
),

channel_costs as (
    select * from {{ ref('channel_costs') }}
),

costed as (
    select
        contacts.*,
        (
            channel_costs.per_contact
            + channel_costs.per_minute * coalesce(contacts.handle_seconds, 0) / 60.0
        )::decimal(18, 4) as cost,
    from contacts
    left join channel_costs
        on contacts.channel = channel_costs.channel
),

final as (
    select
        contact_id,
        channel,
        direction,
        handled_by,
        started_at,
        first_response_at,
        first_agent_response_at,
        queue_seconds,
        abandoned,
        ended_at,
        handle_seconds,
        source_topic,
        topic,
        request_ref,
        resolved,
        customer_id,
        request_id,
        cost,
    from costed
)

select * from final

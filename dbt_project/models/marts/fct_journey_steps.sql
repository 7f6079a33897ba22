-- One row per contact in customer order (model spec section 5): the customer's journey as a
-- sequence of steps, with the journey stage of its topic, the previous step and whether the channel changed within a request.
--
-- Incremental: a build replaces the steps of the customers of int_mart_scope_customers
-- (docs/dbt.md, "The scoped identity chain", item 10), numbered over all of each one's
-- contacts; channel_switch comes from int_request_transitions (the contact before it in its
-- request, which can be another customer's), complete for every request when this runs.
-- On a full build, or when the table is created now, the scope is every customer and the
-- filter is left out (17.5 -> 14.1 s alone at 5M contacts).
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_mart_scope_customers') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('customer_id', 'int_mart_scope_customers') }}",
    )
}}
with

contacts as (
    select *
    from {{ ref('fct_contacts') }}
    {% if not full -%}
    where customer_id in (select customer_id from {{ ref('int_mart_scope_customers') }})
    {%- endif %}
),

topics as (
    select * from {{ ref('topics') }}
),

transitions as (
    select * from {{ ref('int_request_transitions') }}
),

steps as (
    select
        contacts.customer_id,
        row_number() over customer_order as step,
        contacts.contact_id,
        contacts.request_id,
        contacts.channel,
        contacts.topic,
        topics.journey_stage,
        lag(contacts.channel) over customer_order as previous_channel,
        {{ seconds_between('lag(contacts.started_at) over customer_order', 'contacts.started_at') }}
            as seconds_since_previous,
        -- the first contact of a request has no transition: no switch
        coalesce(transitions.from_channel <> transitions.to_channel, false) as channel_switch,
    from contacts
    left join transitions
        on contacts.contact_id = transitions.contact_id
    left join topics
        on contacts.topic = topics.topic
    window
        customer_order as (
            partition by contacts.customer_id
            order by contacts.started_at, contacts.contact_id
        )
)

select * from steps

-- One row per contact in customer order (model spec section 5): the customer's journey as a
-- sequence of steps, with the journey stage of its topic, the previous step and whether the channel changed within a request.
--
-- Incremental: a build replaces the steps of the customers of int_mart_scope_customers
-- (docs/dbt.md, "The scoped identity chain", item 10), numbered over all of each one's
-- contacts; channel_switch is taken over all contacts of their requests, which can hold
-- other customers' contacts.
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('customer_id', 'int_mart_scope_customers') }}",
    )
}}
with

all_contacts as not materialized (
    select * from {{ ref('fct_contacts') }}
),

contacts as (
    select *
    from all_contacts
    where customer_id in (select customer_id from {{ ref('int_mart_scope_customers') }})
),

topics as (
    select * from {{ ref('topics') }}
),

switches as (
    select
        contact_id,
        coalesce(
            channel <> lag(channel) over (partition by request_id order by started_at, contact_id),
            false
        ) as channel_switch,
    from all_contacts
    where request_id in (select request_id from contacts)
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
        switches.channel_switch,
    from contacts
    inner join switches
        on contacts.contact_id = switches.contact_id
    left join topics
        on contacts.topic = topics.topic
    window
        customer_order as (
            partition by contacts.customer_id
            order by contacts.started_at, contacts.contact_id
        )
)

select * from steps

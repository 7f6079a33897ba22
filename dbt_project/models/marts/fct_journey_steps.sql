-- One row per contact in customer order (model spec section 5): the customer's journey as a
-- sequence of steps, with the journey stage of its topic, the previous step and whether the channel changed within a request.
with

contacts as (
    select * from {{ ref('fct_contacts') }}
),

topics as (
    select * from {{ ref('topics') }}
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
        coalesce(
            contacts.channel <> lag(contacts.channel) over request_order,
            false
        ) as channel_switch,
    from contacts
    left join topics
        on contacts.topic = topics.topic
    window
        customer_order as (
            partition by contacts.customer_id
            order by contacts.started_at, contacts.contact_id
        ),
        request_order as (
            partition by contacts.request_id
            order by contacts.started_at, contacts.contact_id
        )
)

select * from steps

-- The request links of model spec section 4, as pairs of contact_seq (node_a < node_b). Two
-- contacts are linked when (1) they quote the same request_ref, or (2) they have the same
-- customer and a mapped topic, are consecutive in (started_at, contact_id) order within that
-- pair and the later starts at most var('request_window_hours') after the earlier.
--
-- Rule 2 links only consecutive contacts, so its components are runs ("islands") of one
-- customer+topic whose gaps are all within the window: they are found with window functions,
-- and each contact is linked to its island's first contact (a star, not a chain). Rule 1 is a
-- star on the first contact quoting the ref. contact_seq is the contact's rank in
-- (started_at, contact_id) order, the same as int_contacts_stitched_to_requests computes, so
-- the smallest node of a component is its first contact.
with

contacts as (
    select * from {{ ref('int_contacts_identified') }}
),

sequenced as (
    select
        contact_id,
        customer_id,
        topic,
        request_ref,
        started_at,
        row_number() over (order by started_at, contact_id) as contact_seq,
    from contacts
),

customer_topic_steps as (
    select
        contact_seq,
        customer_id,
        topic,
        coalesce(
            {{ seconds_between(
                'lag(started_at) over (partition by customer_id, topic order by started_at, contact_id)',
                'started_at',
            ) }} > {{ var('request_window_hours') }} * 3600,
            true
        ) as starts_island,
    from sequenced
    where topic <> 'unmapped'
),

customer_topic_islands as (
    select
        contact_seq,
        customer_id,
        topic,
        sum(starts_island::integer) over (
            partition by customer_id, topic
            order by contact_seq
            rows between unbounded preceding and current row
        ) as island,
    from customer_topic_steps
),

customer_topic_links as (
    select
        min(contact_seq) over (partition by customer_id, topic, island) as node_a,
        contact_seq as node_b,
    from customer_topic_islands
),

request_ref_links as (
    select
        min(contact_seq) over (partition by request_ref) as node_a,
        contact_seq as node_b,
    from sequenced
    where request_ref is not null
),

final as (
    select node_a, node_b from customer_topic_links where node_a <> node_b
    union
    select node_a, node_b from request_ref_links where node_a <> node_b
)

select * from final

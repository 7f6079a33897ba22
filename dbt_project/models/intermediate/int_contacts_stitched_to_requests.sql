-- One row per contact with its unified request (model spec section 4). Two contacts are
-- linked when (1) they quote the same request_ref, or (2) they have the same customer and a
-- mapped topic, are consecutive in (started_at, contact_id) order within that pair and the
-- later starts at most var('request_window_hours') after the earlier. A request is a
-- connected component of these links; request_id = md5 of its first contact_id.
--
-- Rule 2 links only consecutive contacts, so its components are runs ("islands") of one
-- customer+topic whose gaps are all within the window: they are found with window functions,
-- and each contact is linked to its island's first contact (a star, not a chain), which keeps
-- label propagation to a few rounds even for long runs. Rule 1 is a star on the first contact
-- quoting the ref. Nodes are contact sequence numbers in (started_at, contact_id) order, so
-- the smallest label of a component is its first contact.
with

contacts as (
    select * from {{ ref('int_contacts_identified') }}
),

sequenced as (
    select
        *,
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

links as (
    select node_a, node_b from customer_topic_links where node_a <> node_b
    union
    select node_a, node_b from request_ref_links where node_a <> node_b
),

components as (
    select * from {{ connected_components('links', var('max_label_iterations'), 'the request links') }}
),

stitched as (
    select
        sequenced.*,
        coalesce(components.label, sequenced.contact_seq) as request_seq,
    from sequenced
    left join components
        on sequenced.contact_seq = components.node
),

final as (
    select
        stitched.* exclude (request_seq),
        md5(first_contacts.contact_id) as request_id,
    from stitched
    inner join sequenced as first_contacts
        on stitched.request_seq = first_contacts.contact_seq
)

select * from final

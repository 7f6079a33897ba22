-- The request links of model spec section 4, as pairs of contacts (contact_a, contact_b) and
-- of their stable node ids (node_a, node_b; macro node_id over contact_id). Two contacts are
-- linked when (1) they quote the same request_ref, or (2) they have the same customer and a
-- mapped topic, are consecutive in (started_at, contact_id) order within that pair and the
-- later starts at most var('request_window_hours') after the earlier.
--
-- Rule 2 links only consecutive contacts, so its components are runs ("islands") of one
-- customer+topic whose gaps are all within the window: they are found with window functions,
-- and each contact is linked to its island's first contact (a star, not a chain). Rule 1 is a
-- star on the first contact quoting the ref. contact_a is the star's centre.
--
-- Incremental: a build replaces the links with an end in int_request_scope_contacts,
-- computed over every contact of those contacts' customers and refs (the stars and islands
-- they sit in), keeping the links with an end in scope. Any other link is unchanged. On a
-- full build, or when the table is created now, the scope is every contact and its filters
-- are left out (as in int_request_contacts).
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope(['node_a', 'node_b'], 'int_request_scope_contacts', 'contact_node') }}",
    )
}}
with

scope as not materialized (
    select * from {{ ref('int_request_scope_contacts') }}
),

all_contacts as not materialized (
    select * from {{ ref('int_contacts_identified') }}
),

scope_keys as (
    select customer_id, request_ref
    from all_contacts
    where contact_id in (select contact_id from scope)
),

contacts as (
    select
        contact_id,
        {{ node_id('contact_id') }} as contact_node,
        {{ 'true' if full else 'contact_id in (select contact_id from scope)' }} as in_scope,
        customer_id,
        topic,
        request_ref,
        started_at,
    from all_contacts
    {% if not full -%}
    where customer_id in (select customer_id from scope_keys)
        or request_ref in (select request_ref from scope_keys where request_ref is not null)
    {%- endif %}
),

customer_topic_steps as (
    select
        *,
        coalesce(
            {{ seconds_between(
                'lag(started_at) over (partition by customer_id, topic order by started_at, contact_id)',
                'started_at',
            ) }} > {{ var('request_window_hours') }} * 3600,
            true
        ) as starts_island,
    from contacts
    where topic <> 'unmapped'
),

customer_topic_islands as (
    select
        *,
        sum(starts_island::integer) over (
            partition by customer_id, topic
            order by started_at, contact_id
            rows between unbounded preceding and current row
        ) as island,
    from customer_topic_steps
),

stars as (
    select
        first_value(contact_id) over island_order as centre_id,
        first_value(contact_node) over island_order as centre_node,
        first_value(in_scope) over island_order as centre_in_scope,
        contact_id,
        contact_node,
        in_scope,
    from customer_topic_islands
    window island_order as (
        partition by customer_id, topic, island order by started_at, contact_id
    )
    union all
    select
        first_value(contact_id) over ref_order as centre_id,
        first_value(contact_node) over ref_order as centre_node,
        first_value(in_scope) over ref_order as centre_in_scope,
        contact_id,
        contact_node,
        in_scope,
    from contacts
    where request_ref is not null
    window ref_order as (partition by request_ref order by started_at, contact_id)
),

final as (
    select distinct
        centre_id as contact_a,
        contact_id as contact_b,
        centre_node as node_a,
        contact_node as node_b,
    from stars
    where centre_id <> contact_id and (centre_in_scope or in_scope)
)

select * from final

-- The identifier nodes whose row in int_identifiers_clustered the scoped identity rebuild
-- replaces (docs/dbt.md, "The scoped identity chain"): the scope nodes (gone ones too), every
-- node of a customer one of them belonged to in the last build (a removed edge may split
-- it), and every node of a component one of them belongs to now (a new edge may merge it).
-- No other node's component changed, since every changed edge touches a scope node.
-- last_customer_id: the node's customer in the last build, for int_mart_scope_customers (a
-- customer that loses or gains a node has a node here, then or now).
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
with

scope_nodes as not materialized (
    select * from {{ ref('int_identity_scope_nodes') }}
),

screened as not materialized (
    select * from {{ ref('int_identifiers_screened') }}
),

components as not materialized (
    select * from {{ ref('int_identifier_components') }}
),

{% if full %}

final as (
    select identifier_key, null::varchar as last_customer_id, from screened
)

{% else %}

last_clustered as not materialized (
    select * from {{ built_relation('int_identifiers_clustered') }}
),

last_customers as (
    select distinct customer_id
    from last_clustered
    where identifier_key in (select identifier_key from scope_nodes)
        and customer_id is not null
),

current_labels as (
    select distinct label_id
    from components
    where node_id in (select node_id from scope_nodes)
),

scope as (
    select identifier_key from scope_nodes
    union
    select identifier_key
    from last_clustered
    where customer_id in (select customer_id from last_customers)
    union
    select screened.identifier_key
    from components
    inner join screened
        on components.node_id = screened.node_id
    where components.label_id in (select label_id from current_labels)
),

final as (
    select
        scope.identifier_key,
        last_clustered.customer_id as last_customer_id,
    from scope
    left join last_clustered
        on scope.identifier_key = last_clustered.identifier_key
)

{% endif %}

select * from final

-- The customers whose identifiers the scoped identity rebuild can have changed (docs/dbt.md,
-- "The scoped identity chain", item 10): the customers of the nodes int_identifiers_clustered
-- replaced (int_identity_scope_clusters), in the last build and now. A customer's CRM id,
-- e-mails and phones are its nodes, and every node that joined or left a customer is one of
-- those. On a full build, every customer with a node.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
with

scope_clusters as not materialized (
    select * from {{ ref('int_identity_scope_clusters') }}
),

clustered as (
    select * from {{ ref('int_identifiers_clustered') }}
),

{% if full %}

final as (
    select distinct customer_id from clustered
)

{% else %}

final as (
    select last_customer_id as customer_id from scope_clusters
    union
    select customer_id
    from clustered
    where identifier_key in (select identifier_key from scope_clusters)
)

{% endif %}

select customer_id from final where customer_id is not null

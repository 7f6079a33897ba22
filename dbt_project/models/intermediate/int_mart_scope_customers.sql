-- The customers whose dim_customers row and fct_journey_steps rows the scoped build replaces
-- (docs/dbt.md, "The scoped identity chain", item 10): the customers of
-- int_mart_scope_contacts in the last build and now, and int_identity_scope_customers (the
-- customers of the identifier nodes int_identifiers_clustered replaced, then and now: a
-- customer's CRM id, e-mails and phones; a customer with no contact is one too). Any other
-- customer has the same contacts, answers and identifiers as before, and so the same
-- requests: every contact of a request that changed is in int_mart_scope_contacts (the
-- request chain replaces whole requests, then and now), and a request whose only change is
-- a survey answer keeps its first contact, hence its customer. On a full build, every
-- customer.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
with

contacts as (
    select * from {{ ref('fct_contacts') }}
),

identifiers as (
    select * from {{ ref('int_identifiers_aggregated_to_customers') }}
),

scope_contacts as not materialized (
    select * from {{ ref('int_mart_scope_contacts') }}
),

identity_scope as (
    select * from {{ ref('int_identity_scope_customers') }}
),

{% if full %}

final as (
    select customer_id from identifiers
    union
    select customer_id from contacts
)

{% else %}

final as (
    select last_customer_id as customer_id from scope_contacts
    union
    select customer_id
    from contacts
    where contact_id in (select contact_id from scope_contacts)
    union
    select customer_id from identity_scope
)

{% endif %}

select customer_id from final where customer_id is not null

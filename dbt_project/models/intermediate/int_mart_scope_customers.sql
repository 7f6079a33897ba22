-- The customers whose dim_customers row and fct_journey_steps rows the scoped build replaces
-- (docs/dbt.md, "The scoped identity chain", items 10 and 12): the customers of
-- int_mart_scope_contacts in the last build and now, every customer with a contact in a
-- request of int_mart_scope_requests now, and int_identity_scope_customers (the customers of
-- the identifier nodes int_identifiers_clustered replaced, then and now: a customer's CRM
-- id, e-mails and phones; a customer with no contact is one too). Any other customer has the
-- same contacts, answers and identifiers as before, and so the same requests: a request
-- counts for its first contact's customer, and its id is the md5 of that contact, so a new
-- first contact changes the row of every contact of the request; a request whose only
-- change is a survey answer keeps its first contact, hence its customer. On a full build,
-- every customer.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_mart_scope_requests') }}
with

contacts as not materialized (
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
    -- every customer with a contact in a scope request now: a contact new to a request can
    -- change the channel_switch of the contact after it (fct_journey_steps), which can be
    -- another customer's and keep its own row (item 12)
    select customer_id
    from contacts
    where request_id in (select request_id from {{ ref('int_mart_scope_requests') }})
    union
    select customer_id from identity_scope
)

{% endif %}

select customer_id from final where customer_id is not null

-- One row per unified customer (model spec section 3): a connected component of the identity
-- graph, plus contacts whose identifiers were all unlinkable (a customer each). CRM records
-- never contacted are customers too (contacts = 0).
--
-- Incremental: a build replaces the customers of int_mart_scope_customers (docs/dbt.md, "The
-- scoped identity chain", item 10). On a full build the scope is every customer and the
-- filters are left out (macro writes_every_row): no input has a row of a customer outside it.
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('customer_id', 'int_mart_scope_customers') }}",
    )
}}
with

scope as not materialized (
    select * from {{ ref('int_mart_scope_customers') }}
),

-- read twice: a plain copy of the table when full, which DuckDB would materialize
identifiers as {{ 'not materialized' if full }} (
    select *
    from {{ ref('int_identifiers_aggregated_to_customers') }}
    {% if not full %}where customer_id in (select customer_id from scope){% endif %}
),

contacts as (
    select *
    from {{ ref('fct_contacts') }}
    {% if not full %}where customer_id in (select customer_id from scope){% endif %}
),

requests as (
    select *
    from {{ ref('fct_requests') }}
    {% if not full %}where customer_id in (select customer_id from scope){% endif %}
),

surveys as (
    select *
    from {{ ref('fct_survey_responses') }}
    {% if not full %}where customer_id in (select customer_id from scope){% endif %}
),

contact_activity as (
    select
        customer_id,
        list_sort(list(distinct channel)) as channels_used,
        min(started_at) as first_contact_at,
        max(started_at) as last_contact_at,
        count(*) as contacts,
    from contacts
    group by customer_id
),

request_counts as (
    select
        customer_id,
        count(*) as requests,
    from requests
    group by customer_id
),

last_nps as (
    select
        customer_id,
        -- two answers in the same second happen (1M world): the later response id wins, so
        -- the build is deterministic
        arg_max(score, (answered_at, response_id)) as last_nps_score,
    from surveys
    where survey_type = 'nps' and customer_id is not null
    group by customer_id
),

customers as (
    select customer_id from identifiers
    union
    select customer_id from contact_activity
),

final as (
    select
        customers.customer_id,
        identifiers.crm_id,
        coalesce(identifiers.emails, []::varchar[]) as emails,
        coalesce(identifiers.phones, []::varchar[]) as phones,
        coalesce(contact_activity.channels_used, []::varchar[]) as channels_used,
        contact_activity.first_contact_at,
        contact_activity.last_contact_at,
        coalesce(contact_activity.contacts, 0) as contacts,
        coalesce(request_counts.requests, 0) as requests,
        last_nps.last_nps_score,
    from customers
    left join identifiers
        on customers.customer_id = identifiers.customer_id
    left join contact_activity
        on customers.customer_id = contact_activity.customer_id
    left join request_counts
        on customers.customer_id = request_counts.customer_id
    left join last_nps
        on customers.customer_id = last_nps.customer_id
)

select * from final

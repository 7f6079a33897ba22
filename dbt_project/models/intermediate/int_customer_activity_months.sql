-- One row per customer and month in which the customer had any contact (reporting timezone,
-- model spec section 6): what mart_customer_retention counts, a cohort being the first of a
-- customer's months. Narrow and about half as many rows as fct_contacts, so the mart groups
-- these instead of every contact.
--
-- Incremental: a build replaces the customers of int_mart_scope_customers (docs/dbt.md, "The
-- scoped identity chain", item 10). A customer's months depend on its own contacts alone,
-- and every customer whose contacts changed, came or went is in that scope, as for
-- dim_customers. Each row keeps the reporting_timezone it was computed in: a build under
-- another timezone deletes every row and takes every customer. When this table is created
-- (a first build, a dropped table) it takes every customer, so the metric marts can be built
-- on fct_contacts alone (tests/conftest.py).
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_mart_scope_customers') }}
{%- set timezone = var('reporting_timezone', 'UTC') %}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook=[
            "{{ delete_identity_scope('customer_id', 'int_mart_scope_customers') }}",
            "{% if is_incremental() %}delete from {{ this }} where reporting_timezone <> "
            ~ "{{ dbt.string_literal(var('reporting_timezone', 'UTC')) }}{% endif %}",
        ],
    )
}}
{%- set every_customer = takes_every_row() or (
    execute and run_query(
        'select count(*) from ' ~ this ~ ' where reporting_timezone <> '
        ~ dbt.string_literal(timezone)
    ).columns[0].values()[0] > 0
) %}
with

contacts as (
    select customer_id, started_at,
    from {{ ref('fct_contacts') }}
    {% if not every_customer %}
    where customer_id in (select customer_id from {{ ref('int_mart_scope_customers') }})
    {% endif %}
),

final as (
    select distinct
        customer_id,
        {{ reporting_month('started_at') }} as activity_month,
        {{ dbt.string_literal(timezone) }} as reporting_timezone,
    from contacts
)

select * from final

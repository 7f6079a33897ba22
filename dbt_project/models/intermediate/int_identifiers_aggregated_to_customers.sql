-- One row per customer with linkable identifiers: its CRM id and its sorted e-mails and
-- phones (model spec section 3), for dim_customers. A model of its own so its list
-- aggregates over every identifier never share one query with dim_customers' aggregates over
-- the contacts: together they held more than a 1GB DuckDB cap at 5M contacts, apart each
-- takes under half (docs/dbt.md, "Memory").
--
-- Incremental: a build replaces the customers of int_identity_scope_customers. On a full
-- build that is every customer, and the filter is only that a node has one (macro
-- writes_every_row).
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_identity_scope_customers') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('customer_id', 'int_identity_scope_customers') }}",
    )
}}
with

clustered as (
    select *
    from {{ ref('int_identifiers_clustered') }}
    {% if full -%}
    where customer_id is not null
    {%- else -%}
    where customer_id in (select customer_id from {{ ref('int_identity_scope_customers') }})
    {%- endif %}
),

final as (
    select
        customer_id,
        min(identifier_value) filter (where identifier_type = 'crm_id') as crm_id,
        -- one row per identifier (identifier_key is unique), so no value repeats in a list
        list_sort(list(identifier_value) filter (where identifier_type = 'email')) as emails,
        list_sort(list(identifier_value) filter (where identifier_type = 'phone')) as phones,
    from clustered
    where is_linkable
    group by customer_id
)

select * from final

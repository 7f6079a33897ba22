-- One row per identifier node of the identity graph (model spec section 3), with its guards
-- (int_identifiers_screened) and its component (int_identifier_components): customer_label is
-- the smallest `type:value` in the component, customer_id its md5. Blocklisted and shared
-- nodes get no label.
--
-- Incremental: a build replaces the rows of int_identity_scope_clusters, which holds every
-- node of each component it touches, so the smallest key is taken over whole components. On
-- a full build that is every node, and the filter is left out (macro writes_every_row).
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('identifier_key', 'int_identity_scope_clusters') }}",
    )
}}
with

scope as (
    select * from {{ ref('int_identity_scope_clusters') }}
),

screened as (
    select * from {{ ref('int_identifiers_screened') }}
),

components as (
    select * from {{ ref('int_identifier_components') }}
),

scoped as (
    select
        screened.*,
        components.label_id,
    from screened
    left join components
        on screened.node_id = components.node_id
    {% if not full %}where screened.identifier_key in (select identifier_key from scope){% endif %}
),

clustered as (
    select
        identifier_key,
        identifier_type,
        identifier_value,
        records,
        neighbours,
        is_blocklisted,
        blocklist_reason,
        is_shared,
        is_linkable,
        case
            when is_linkable and label_id is not null
                then min(identifier_key) over (partition by label_id)
            when is_linkable
                then identifier_key
        end as customer_label,
        first_observed_at,
        last_observed_at,
    from scoped
),

final as (
    select
        *,
        md5(customer_label) as customer_id,
    from clustered
)

select * from final

-- Every node with an edge, labelled with the smallest node_id of its component and with the
-- component's size (model spec section 3). The components are found by the Python model
-- int_identity_scope_component_labels (scipy over the edges as integer arrays).
--
-- Incremental: a build replaces the nodes of int_identity_scope_components, whole components
-- then and now, with the labels found for them; every other node's component is unchanged.
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('node_id', 'int_identity_scope_components') }}",
    )
}}
with

labels as (
    select * from {{ ref('int_identity_scope_component_labels') }}
),

final as (
    select
        node_id::bigint as node_id,
        label_id::bigint as label_id,
        component_identifiers::bigint as component_identifiers,
    from labels
)

select * from final

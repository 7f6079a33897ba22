-- The identity graph's edges: two linkable identifiers (neither blocklisted nor shared, see
-- int_identifiers_screened) on one record, as a pair of node_id with node_a < node_b. A table
-- of its own so that int_identifier_components reads it as integer arrays.
--
-- Incremental: a build replaces the edges touching a scope node (int_identity_scope_nodes),
-- from int_identity_scope_observations. An edge between two other nodes stays: every record
-- showing both is unchanged (a changed record's nodes are all in scope), and so is their
-- linkability (a node's degree changes only with its records).
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_identity_scope_nodes') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope(['node_a', 'node_b'], 'int_identity_scope_nodes', 'node_id') }}",
    )
}}
with

observations as (
    select * from {{ ref('int_identity_scope_observations') }}
),

screened as (
    select * from {{ ref('int_identifiers_screened') }}
),

linkable_observations as (
    select
        observations.record_key,
        observations.node_id,
        observations.node_in_scope,
    from observations
    inner join screened
        on observations.node_id = screened.node_id
    where screened.is_linkable
),

final as (
    select distinct
        left_side.node_id as node_a,
        right_side.node_id as node_b,
    from linkable_observations as left_side
    inner join linkable_observations as right_side
        on left_side.record_key = right_side.record_key
        and left_side.node_id < right_side.node_id
    where left_side.node_in_scope or right_side.node_in_scope
)

select * from final

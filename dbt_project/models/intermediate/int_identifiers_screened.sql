-- One row per identifier node of the identity graph (model spec section 3) with its guards.
-- A node matching identifier_blocklist (exact or LIKE) takes no part in linking; a node with
-- more than var('max_identifier_degree') distinct (non-blocklisted) neighbours is shared and
-- loses all its edges. node_id is a stable integer id (macro node_id): the graph is walked on
-- it (int_identifier_edges, int_identifier_components), so joins hold integers, not strings.
--
-- Incremental: a build replaces the rows of the scope nodes only (int_identity_scope_nodes),
-- from int_identity_scope_observations. A node's row depends on the records that show it and
-- their other identifiers, all of which are there; every other node's records did not change.
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_identity_scope_nodes') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('identifier_key', 'int_identity_scope_nodes') }}",
    )
}}
with

observations as not materialized (
    select * from {{ ref('int_identity_scope_observations') }}
),

blocklist as (
    select * from {{ ref('identifier_blocklist') }}
),

-- every node on a scope record: scope nodes, and the neighbours their degrees count
seen_nodes as (
    select distinct
        identifier_key,
        identifier_type,
        identifier_value,
    from observations
),

blocklisted as (
    select
        seen_nodes.identifier_key,
        min(blocklist.reason) as blocklist_reason,
    from seen_nodes
    inner join blocklist
        on seen_nodes.identifier_type = blocklist.identifier_type
        and (
            (blocklist.match_kind = 'exact' and seen_nodes.identifier_value = blocklist.pattern)
            or (blocklist.match_kind = 'like' and seen_nodes.identifier_value like blocklist.pattern)
        )
    group by seen_nodes.identifier_key
),

nodes as (
    select
        identifier_key,
        identifier_type,
        identifier_value,
        node_id,
        -- one row per (record, identifier): a unique_combination test on
        -- int_identifiers_observed holds it, so count(*) counts distinct records
        count(*) as records,
        min(observed_at) as first_observed_at,
        max(observed_at) as last_observed_at,
    from observations
    where node_in_scope
    group by all
),

linkable_observations as (
    select
        record_key,
        node_id,
        node_in_scope,
    from observations
    where identifier_key not in (select identifier_key from blocklisted)
),

degrees as (
    select
        scope_side.node_id,
        count(distinct other_side.node_id) as neighbours,
    from linkable_observations as scope_side
    inner join linkable_observations as other_side
        on scope_side.record_key = other_side.record_key
        and scope_side.node_id <> other_side.node_id
    where scope_side.node_in_scope
    group by scope_side.node_id
),

screened as (
    select
        nodes.identifier_key,
        nodes.identifier_type,
        nodes.identifier_value,
        nodes.records,
        nodes.first_observed_at,
        nodes.last_observed_at,
        nodes.node_id,
        coalesce(degrees.neighbours, 0) as neighbours,
        blocklisted.identifier_key is not null as is_blocklisted,
        blocklisted.blocklist_reason,
        blocklisted.identifier_key is null
        and coalesce(degrees.neighbours, 0) > {{ var('max_identifier_degree') }} as is_shared,
    from nodes
    left join degrees
        on nodes.node_id = degrees.node_id
    left join blocklisted
        on nodes.identifier_key = blocklisted.identifier_key
),

final as (
    select
        *,
        not is_blocklisted and not is_shared as is_linkable,
    from screened
)

select * from final

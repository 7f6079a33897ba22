-- One row per identifier node of the identity graph (model spec section 3), with its guards
-- and its component. Guards first: a node matching identifier_blocklist (exact or LIKE) takes
-- no part in linking; a node with more than var('max_identifier_degree') distinct
-- (non-blocklisted) neighbours is shared and all its edges are dropped. Components of the
-- remaining edges come from label propagation (macro connected_components, which fails the
-- build when var('max_label_iterations') rounds are not enough). customer_id = md5 of the
-- smallest `type:value` in the component. The graph is walked on node_seq, each node's rank in
-- identifier_key order, so the smallest label is still the smallest key while the join and
-- propagation state hold integers instead of strings (1M contacts: see docs/dbt.md "Memory").
with

observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

blocklist as (
    select * from {{ ref('identifier_blocklist') }}
),

nodes as (
    select
        identifier_key,
        identifier_type,
        identifier_value,
        count(distinct record_key) as records,
        min(observed_at) as first_observed_at,
        max(observed_at) as last_observed_at,
    from observed
    group by all
),

numbered_nodes as (
    select
        *,
        row_number() over (order by identifier_key) as node_seq,
    from nodes
),

blocklisted as (
    select
        nodes.identifier_key,
        min(blocklist.reason) as blocklist_reason,
    from nodes
    inner join blocklist
        on nodes.identifier_type = blocklist.identifier_type
        and (
            (blocklist.match_kind = 'exact' and nodes.identifier_value = blocklist.pattern)
            or (blocklist.match_kind = 'like' and nodes.identifier_value like blocklist.pattern)
        )
    group by nodes.identifier_key
),

linkable_observations as (
    select
        observed.record_key,
        numbered_nodes.node_seq,
    from observed
    inner join numbered_nodes
        on observed.identifier_key = numbered_nodes.identifier_key
    left join blocklisted
        on observed.identifier_key = blocklisted.identifier_key
    where blocklisted.identifier_key is null
),

co_occurrences as (
    select distinct
        left_side.node_seq as node_a,
        right_side.node_seq as node_b,
    from linkable_observations as left_side
    inner join linkable_observations as right_side
        on left_side.record_key = right_side.record_key
        and left_side.node_seq < right_side.node_seq
),

degrees as (
    select
        node as node_seq,
        count(distinct neighbour) as neighbours,
    from (
        select node_a as node, node_b as neighbour from co_occurrences
        union all
        select node_b as node, node_a as neighbour from co_occurrences
    )
    group by node
),

screened as (
    select
        numbered_nodes.*,
        coalesce(degrees.neighbours, 0) as neighbours,
        blocklisted.identifier_key is not null as is_blocklisted,
        blocklisted.blocklist_reason,
        blocklisted.identifier_key is null
        and coalesce(degrees.neighbours, 0) > {{ var('max_identifier_degree') }} as is_shared,
    from numbered_nodes
    left join degrees
        on numbered_nodes.node_seq = degrees.node_seq
    left join blocklisted
        on numbered_nodes.identifier_key = blocklisted.identifier_key
),

guarded_edges as (
    select co_occurrences.*
    from co_occurrences
    inner join screened as screened_a
        on co_occurrences.node_a = screened_a.node_seq
    inner join screened as screened_b
        on co_occurrences.node_b = screened_b.node_seq
    where not screened_a.is_shared and not screened_b.is_shared
),

components as (
    select * from {{ connected_components('guarded_edges', var('max_label_iterations'), 'the identity graph') }}
),

clustered as (
    select
        screened.identifier_key,
        screened.identifier_type,
        screened.identifier_value,
        screened.records,
        screened.neighbours,
        screened.is_blocklisted,
        screened.blocklist_reason,
        screened.is_shared,
        not screened.is_blocklisted and not screened.is_shared as is_linkable,
        case
            when not screened.is_blocklisted and not screened.is_shared
                then coalesce(label_nodes.identifier_key, screened.identifier_key)
        end as customer_label,
        screened.first_observed_at,
        screened.last_observed_at,
    from screened
    left join components
        on screened.node_seq = components.node
    left join screened as label_nodes
        on components.label = label_nodes.node_seq
),

final as (
    select
        *,
        md5(customer_label) as customer_id,
    from clustered
)

select * from final

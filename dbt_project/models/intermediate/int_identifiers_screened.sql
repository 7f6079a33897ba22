-- One row per identifier node of the identity graph (model spec section 3) with its guards.
-- A node matching identifier_blocklist (exact or LIKE) takes no part in linking; a node with
-- more than var('max_identifier_degree') distinct (non-blocklisted) neighbours is shared and
-- loses all its edges. node_seq is the node's rank in identifier_key order: the graph is
-- walked on it (int_identifier_edges, int_identifier_components), so the smallest label is
-- still the smallest key while joins and propagation hold integers, not strings.
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
        -- observed has one row per (record, identifier): it groups by them (and tests it), so
        -- count(*) counts distinct records; count(distinct) took 39 s here at 5M, count(*) 13
        count(*) as records,
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
    {{ co_occurring_pairs('linkable_observations') }}
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

final as (
    select
        *,
        not is_blocklisted and not is_shared as is_linkable,
    from screened
)

select * from final

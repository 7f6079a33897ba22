-- The identity graph's components: every node with an edge, labelled with the smallest
-- node_seq of its component (label propagation, macro connected_components, which fails the
-- build when var('max_label_iterations') rounds are not enough). Nodes without an edge are
-- not here; int_identifiers_clustered labels them with themselves.
with

components as (
    select * from {{ connected_components(ref('int_identifier_edges'), var('max_label_iterations'), 'the identity graph') }}
),

final as (
    select
        node as node_seq,
        label as label_seq,
        rounds,
    from components
)

select * from final

{#-
    Connected components of an undirected graph by iterative label propagation, as one SQL
    subquery (so models using it stay plain SQL and unit-testable).

    `edges` names a relation or CTE with columns node_a, node_b (any orderable type). Returns
    (node, label, rounds): every node that has an edge, labelled with the smallest node of its
    component. Isolated nodes are not returned; callers coalesce them to themselves.

    How: a DuckDB recursive CTE with `using key (node)`, so the recursion table holds one
    current label per node (no quadratic "all reachable pairs" blow-up). Round 0 labels each
    node with min(itself, its neighbours); every later round takes only the nodes whose label
    changed in the previous round and offers that label to their neighbours, keeping it where
    it is smaller. The recursion ends exactly when a round changes no label (the working set
    is empty): that is the convergence check. A round beyond `max_iterations` that would still
    change a label calls error(), so the build fails loudly instead of stopping early with
    half-merged components.
-#}
{% macro connected_components(edges, max_iterations, graph_name) -%}
(
    with recursive

    directed_edges as (
        select
            node_a as node,
            node_b as neighbour,
        from {{ edges }}
        union
        select
            node_b as node,
            node_a as neighbour,
        from {{ edges }}
    ),

    labels (node, label, rounds) using key (node) as (
        select
            node,
            least(node, min(neighbour)) as label,
            0 as rounds,
        from directed_edges
        group by node

        union

        select
            offers.node,
            offers.label,
            case
                when offers.rounds > {{ max_iterations }}
                    then error(
                        'label propagation over {{ graph_name }} did not converge within '
                        || '{{ max_iterations }} rounds (var max_label_iterations): a component '
                        || 'this deep usually means an identifier shared by many people escaped '
                        || 'the guards; check dq.dq_shared_identifiers and the blocklist, or raise '
                        || 'the cap if the chain is real'
                    )
                else offers.rounds
            end as rounds,
        from (
            -- the smallest label each neighbour of a changed node is offered; grouped before
            -- it meets the current labels, so the planner joins on node equality and never
            -- pairs labels by `<` alone (which it did on integer nodes: 10^10 pairs at 100k)
            select
                directed_edges.neighbour as node,
                min(changed.label) as label,
                max(changed.rounds) + 1 as rounds,
            from labels as changed
            inner join directed_edges
                on changed.node = directed_edges.node
            group by directed_edges.neighbour
        ) as offers
        inner join recurring.labels as current_labels
            on offers.node = current_labels.node
        where offers.label < current_labels.label
    )

    select
        node,
        label,
        rounds,
    from labels
)
{%- endmacro %}

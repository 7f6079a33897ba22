"""The identity graph's components (model spec section 3) for the nodes a build replaces, as
a dbt Python model; int_identifier_components keeps them for every node.

Every node on an edge that touches int_identity_scope_components (every edge on a full build)
is labelled with the smallest node_id of its connected component, and with the component's
size. That set holds whole components, old and new (the argument is in that model), so the
labels are the ones a pass over every edge would give; a component found here with a node
outside the set fails the build, since int_identifier_components would keep a stale row for
that node. Nodes without an edge are not here; int_identifiers_clustered labels them with
themselves. At 5M contacts the pass over every edge took 4-5 s and ~0.6 GB outside DuckDB's
memory_limit on every build, which put the increment's peak RSS over 2 GB once the queries
around it got faster.

Why Python and not SQL: ``harmonia.graph.label_components`` (scipy's connected_components)
takes one pass over the edges held as integer arrays, in O(nodes + edges) memory outside
DuckDB. The recursive label-propagation CTE it replaces kept every round's state inside
DuckDB, and at a 1GB memory_limit it failed the 5M build (docs/dbt.md "Memory"). The rows
are the same: same nodes, same smallest label.

A component with more than var('max_component_identifiers') nodes fails the build. Guards
that miss an identifier shared by many people (int_identifiers_screened) let it chain many
customers into one, and that is the symptom.
"""

import pyarrow.compute as pc
from harmonia.graph import label_scope_components


def model(dbt, session):
    dbt.config(materialized="table")
    cap = int(dbt.config.get("max_component_identifiers"))
    ((is_full,),) = dbt.ref("int_identity_build").project("is_full").fetchall()
    components = label_scope_components(
        dbt.ref("int_identifier_edges").project("node_a, node_b"),
        dbt.ref("int_identity_scope_components"),
        "node_id",
        is_full=is_full,
        model="int_identifier_components",
    )
    largest = pc.max(components["size"]).as_py() or 0
    if largest > cap:
        raise ValueError(
            f"an identity component has {largest:,} identifiers, more than "
            f"var max_component_identifiers ({cap:,}): an identifier shared by many people "
            "escaped the guards; check dq.dq_shared_identifiers and the blocklist, or raise "
            "the cap if the customer is real"
        )
    return components.rename_columns(["node_id", "label_id", "component_identifiers"])

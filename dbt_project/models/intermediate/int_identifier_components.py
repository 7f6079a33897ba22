"""The identity graph's components (model spec section 3), as a dbt Python model.

Every node of int_identifier_edges is labelled with the smallest node_id of its connected
component, and with the component's size. Nodes without an edge are not here;
int_identifiers_clustered labels them with themselves.

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
from harmonia.graph import label_components


def model(dbt, session):
    dbt.config(materialized="table")
    cap = int(dbt.config.get("max_component_identifiers"))
    edges = dbt.ref("int_identifier_edges").fetchnumpy()
    components = label_components(edges["node_a"], edges["node_b"])
    largest = pc.max(components["size"]).as_py() or 0
    if largest > cap:
        raise ValueError(
            f"an identity component has {largest:,} identifiers, more than "
            f"var max_component_identifiers ({cap:,}): an identifier shared by many people "
            "escaped the guards; check dq.dq_shared_identifiers and the blocklist, or raise "
            "the cap if the customer is real"
        )
    return components.rename_columns(["node_id", "label_id", "component_identifiers"])

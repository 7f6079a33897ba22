"""The identity graph's components (model spec section 3), as a dbt Python model.

Every node of int_identifier_edges is labelled with the smallest node_seq of its connected
component, and with the component's size. Nodes without an edge are not here;
int_identifiers_clustered labels them with themselves.

Why Python and not SQL: the components come from scipy's connected_components, one pass over
the edges held as integer arrays. That takes O(nodes + edges) memory outside DuckDB, about
0.3 GB at 5M contacts (6.0M edges). The recursive label-propagation CTE it replaces kept every
round's state inside DuckDB, and at a 1GB memory_limit it failed the 5M build
(docs/dbt.md "Memory"). The rows are the same: same nodes, same smallest label.

A component with more than var('max_component_identifiers') nodes fails the build. Guards
that miss an identifier shared by many people (int_identifiers_screened) let it chain many
customers into one, and that is the symptom.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components


def label_components(node_a: np.ndarray, node_b: np.ndarray) -> pa.Table:
    """(node_seq, label_seq, component_identifiers) for every node on an edge (a, b)."""
    nodes, index = np.unique(np.concatenate([node_a, node_b]), return_inverse=True)
    edges = len(node_a)
    graph = coo_array(
        (np.ones(edges, dtype=np.int8), (index[:edges], index[edges:])),
        shape=(len(nodes), len(nodes)),
    ).tocsr()
    count, component = connected_components(graph, directed=False)
    # nodes are sorted, so a component's first node in that order is its smallest
    first = np.full(count, len(nodes), dtype=np.int64)
    np.minimum.at(first, component, np.arange(len(nodes)))
    sizes = np.bincount(component, minlength=count)
    return pa.table(
        {
            "node_seq": pa.array(nodes, pa.int64()),
            "label_seq": pa.array(nodes[first[component]], pa.int64()),
            "component_identifiers": pa.array(sizes[component], pa.int64()),
        }
    )


def model(dbt, session):
    dbt.config(materialized="table")
    cap = int(dbt.config.get("max_component_identifiers"))
    edges = dbt.ref("int_identifier_edges").fetchnumpy()
    result = label_components(edges["node_a"], edges["node_b"])
    largest = pc.max(result["component_identifiers"]).as_py() or 0
    if largest > cap:
        raise ValueError(
            f"an identity component has {largest:,} identifiers, more than "
            f"var max_component_identifiers ({cap:,}): an identifier shared by many people "
            "escaped the guards; check dq.dq_shared_identifiers and the blocklist, or raise "
            "the cap if the customer is real"
        )
    return result

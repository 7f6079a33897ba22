"""Connected components of large undirected graphs, for the dbt Python models.

The identity graph (``int_identity_scope_component_labels``) and the request links
(``int_request_scope_component_labels``) both need, for every node on an edge, the smallest
node of its component. ``label_components`` does it in one pass of scipy's
``connected_components`` over the edges held as integer arrays. Memory is O(nodes + edges)
outside DuckDB (about 0.3 GB for 6M edges), and it does not depend on DuckDB's
``memory_limit``. A recursive label-propagation CTE did the same inside DuckDB and failed
5M-contact builds at a 1GB cap (docs/dbt.md, "Memory"). ``label_scope_components`` runs it
over the edges that touch a scoped build's nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

if TYPE_CHECKING:
    from duckdb import DuckDBPyRelation


def label_components(node_a: np.ndarray, node_b: np.ndarray) -> pa.Table:
    """``(node, label, size)`` for every node on an edge ``(node_a[i], node_b[i])``.

    ``label`` is the smallest node of the node's component and ``size`` the component's
    number of nodes. Nodes are any int64 values (not array positions); the rows come in node
    order.
    """
    nodes, index = np.unique(
        np.concatenate([np.asarray(node_a, np.int64), np.asarray(node_b, np.int64)]),
        return_inverse=True,
    )
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
            "node": pa.array(nodes, pa.int64()),
            "label": pa.array(nodes[first[component]], pa.int64()),
            "size": pa.array(sizes[component], pa.int64()),
        }
    )


def label_scope_components(
    edges: DuckDBPyRelation,
    scope: DuckDBPyRelation,
    scope_column: str,
    *,
    is_full: bool,
    model: str,
) -> pa.Table:
    """``label_components`` over the edges (``node_a``, ``node_b``) that touch ``scope``, or
    over every edge when ``is_full``.

    A scoped build holds whole components in ``scope`` (each scope model argues why), so these
    labels are the ones a pass over every edge would give. A component found here with a node
    outside ``scope`` means the scope missed nodes, whose rows in the incremental table
    ``model`` would be left stale: that fails the build.
    """
    if not is_full:
        edges = edges.join(scope, f"node_a = {scope_column}", how="semi").union(
            edges.join(scope, f"node_b = {scope_column}", how="semi")
        )
    arrays = edges.fetchnumpy()
    components = label_components(arrays["node_a"], arrays["node_b"])
    if not is_full:
        outside = ~np.isin(components["node"].to_numpy(), scope.fetchnumpy()[scope_column])
        if outside.any():
            raise ValueError(
                f"{int(outside.sum()):,} nodes of the components found from the edges that "
                f"touch the scope are not in it, so {model} would keep stale rows for them: "
                "the scope misses nodes (docs/dbt.md, the scoped identity chain). A "
                "--full-refresh build is correct meanwhile."
            )
    return components

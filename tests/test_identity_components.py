"""The component rule of the identity graph and the request links (``harmonia.graph``).

dbt's unit tests cover SQL models only, and the two labelling models
(int_identity_scope_component_labels, int_request_scope_component_labels) are dbt Python models
over ``label_components``. So this file checks the function on edge lists built by hand, and a
random graph against a breadth-first search written here. ``tests/test_dbt_rules.py`` runs both
models inside real ``dbt build``s, including the cap on an identity component's size.
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
from harmonia.graph import label_components


def components(edges: list[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    a = np.array([e[0] for e in edges], dtype=np.int64)
    b = np.array([e[1] for e in edges], dtype=np.int64)
    table = label_components(a, b).to_pydict()
    return {
        n: (label, size)
        for n, label, size in zip(table["node"], table["label"], table["size"], strict=True)
    }


def test_a_chain_is_one_component_labelled_by_its_smallest_node() -> None:
    # email-phone, phone-crm id, crm id-work email, work email-chat id, written either way
    # round; an unrelated pair stays apart
    got = components([(2, 4), (4, 5), (3, 5), (1, 3), (7, 8)])
    assert got == {1: (1, 5), 2: (1, 5), 3: (1, 5), 4: (1, 5), 5: (1, 5), 7: (7, 2), 8: (7, 2)}


def test_no_edges_means_no_rows() -> None:
    assert components([]) == {}


def test_large_sparse_node_numbers_keep_their_values() -> None:
    # node_seq values are ranks of millions of keys: labels are node values, not array slots
    big = 6_000_000_000
    got = components([(big + 9, big), (big, 17)])
    assert got == {17: (17, 3), big: (17, 3), big + 9: (17, 3)}


def test_a_random_graph_matches_a_breadth_first_search() -> None:
    rng = random.Random(7)
    edges = [(rng.randrange(3_000), rng.randrange(3_000)) for _ in range(2_000)]
    edges = [(a, b) for a, b in edges if a != b]
    neighbours: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    expected: dict[int, tuple[int, int]] = {}
    for start in sorted(neighbours):
        if start in expected:
            continue
        seen, frontier = {start}, [start]
        while frontier:
            frontier = [n for node in frontier for n in neighbours[node] if n not in seen]
            seen.update(frontier)
        for node in seen:
            expected[node] = (min(seen), len(seen))
    assert components(edges) == expected

"""The identity graph's component rule (the dbt Python model int_identifier_components).

dbt's unit tests cover SQL models only. So this file loads the model's own module from the
dbt project and checks ``label_components`` on edge lists built by hand. A random graph is
checked against a breadth-first search written here. ``tests/test_dbt_rules.py`` runs the
same model inside real ``dbt build``s, including the cap on a component's size.
"""

from __future__ import annotations

import importlib.util
import random
from collections import defaultdict
from types import ModuleType

import numpy as np
import pytest
from harmonia.transform import DBT_PROJECT_DIR

MODEL = DBT_PROJECT_DIR / "models" / "intermediate" / "int_identifier_components.py"


@pytest.fixture(scope="module")
def model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("int_identifier_components", MODEL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def components(model: ModuleType, edges: list[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    a = np.array([e[0] for e in edges], dtype=np.int64)
    b = np.array([e[1] for e in edges], dtype=np.int64)
    table = model.label_components(a, b).to_pydict()
    return {
        n: (label, size)
        for n, label, size in zip(
            table["node_seq"], table["label_seq"], table["component_identifiers"], strict=True
        )
    }


def test_a_chain_is_one_component_labelled_by_its_smallest_node(model: ModuleType) -> None:
    # email-phone, phone-crm id, crm id-work email, work email-chat id, written either way
    # round; an unrelated pair stays apart
    got = components(model, [(2, 4), (4, 5), (3, 5), (1, 3), (7, 8)])
    assert got == {1: (1, 5), 2: (1, 5), 3: (1, 5), 4: (1, 5), 5: (1, 5), 7: (7, 2), 8: (7, 2)}


def test_no_edges_means_no_rows(model: ModuleType) -> None:
    assert components(model, []) == {}


def test_large_sparse_node_numbers_keep_their_values(model: ModuleType) -> None:
    # node_seq values are ranks of millions of keys: labels are node values, not array slots
    big = 6_000_000_000
    got = components(model, [(big + 9, big), (big, 17)])
    assert got == {17: (17, 3), big: (17, 3), big + 9: (17, 3)}


def test_a_random_graph_matches_a_breadth_first_search(model: ModuleType) -> None:
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
    assert components(model, edges) == expected

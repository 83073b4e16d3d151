"""The docs that describe the code stay true to it (datasette's test_docs.py habit): every core module
has its row in docs/architecture.md and every path there exists; the core's imports form no circle
beyond the one the architecture names."""

from __future__ import annotations

import ast
import re

from .helpers import REPO

ARCHITECTURE = REPO / "docs" / "architecture.md"
CORE = REPO / "ganzoo_directions"


def test_every_core_module_has_its_row_in_the_architecture_table():
    text = ARCHITECTURE.read_text()
    named = set(re.findall(r"`(ganzoo_directions/[a-z_]+\.py)`", text))
    modules = {f"ganzoo_directions/{path.name}" for path in CORE.glob("*.py") if path.name != "__init__.py"}
    modules -= {"ganzoo_directions/__main__.py"}
    assert modules - named == set(), "modules missing from docs/architecture.md"
    assert named - modules == set(), "docs/architecture.md names modules that do not exist"
    for folder in re.findall(r"`((?:plugins|docs|scripts|benchmarks|hub_cards)/[^`{}]*?)/?`", text):
        assert (REPO / folder).exists(), folder


def _core_imports() -> dict[str, set[str]]:
    """Each core module -> the core modules it imports (at the top or inside a function)."""
    graph: dict[str, set[str]] = {}
    for path in CORE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[path.stem] = found
    return graph


def test_the_core_imports_form_no_circle_but_the_one_the_architecture_names():
    graph = _core_imports()

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    in_circles = {module for module in graph if module in reachable(module)}
    assert in_circles <= {"directions", "hub"}, sorted(in_circles)  # DirectionSet.from_pretrained/push_to_hub
    assert "directions ↔ hub" in ARCHITECTURE.read_text()


def _layers() -> dict[str, int]:
    """Each core module -> its layer in docs/architecture.md's "Layers" paragraph (0 = the bottom;
    groups are separated by ';', and `cli` stands above the features it is listed with)."""
    text = ARCHITECTURE.read_text()
    paragraph = text[text.index("Imports run downwards:") :]
    paragraph = paragraph[: paragraph.index("on top.")]
    groups = paragraph.replace(" and `cli`", "; `cli`").split(";")
    return {name: level for level, group in enumerate(groups) for name in re.findall(r"`([a-z_]+)`", group)}


def test_no_core_module_imports_one_above_it():
    layers = _layers()
    graph = _core_imports()
    assert set(graph) - {"__init__"} <= set(layers), sorted(set(graph) - set(layers) - {"__init__"})
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if module in layers and target in layers and layers[target] > layers[module]
    )
    assert len(set(layers.values())) >= 6  # the paragraph was read
    assert upward == [], upward  # (directions <-> hub share a layer: the circle named above)

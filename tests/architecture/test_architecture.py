"""The layers of ARCHITECTURE.md hold: imports point one way and never in a circle.

    connectors, expectations, warehouse   (bottom: import nothing of sharehub, api or dags)
                    ↑
    sharehub (the domain)                 (imports the bottom; never api, dags, sharehub.cli or sharehub.demo)
                    ↑
    api, dags, sharehub.cli, sharehub.demo (top: import the domain)

An import inside a function counts as an import. It is allowed in the top layer, where it keeps
`sharehub --help` and DAG parsing cheap, and elsewhere only for a heavy library with a comment saying so.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from sharehub.settings import REPO_ROOT

PACKAGES = ("sharehub", "api", "connectors", "expectations", "warehouse", "dags")
BOTTOM = ("connectors", "expectations", "warehouse")
TOP = ("api", "dags", "sharehub.cli", "sharehub.demo", "sharehub.__main__")


def _layer(module: str) -> int:
    if module.split(".")[0] in BOTTOM:
        return 0
    return 2 if any(module == t or module.startswith(t + ".") for t in TOP) else 1


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports() -> tuple[dict[str, set[str]], list[tuple[str, str, int, str]]]:
    """Each module's project imports (TYPE_CHECKING ones aside), and the imports made inside functions."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    inside: list[tuple[str, str, int, str]] = []
    for module, path in modules.items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            targets = {resolve(n) for n in names if n.split(".")[0] in PACKAGES} - {None, module}
            in_function = type_checking = False
            up = node
            while up in parents:
                up = parents[up]
                in_function |= isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef)
                type_checking |= isinstance(up, ast.If) and "TYPE_CHECKING" in ast.unparse(up.test)
            if type_checking:
                continue
            for target in targets:
                assert target is not None
                graph[module].add(target)
                if in_function:
                    inside.append((module, target, node.lineno, lines[node.lineno - 1]))
    return graph, inside


def test_imports_point_down_only() -> None:
    graph, _ = _imports()
    upward = sorted((m, t) for m, targets in graph.items() for t in targets if _layer(t) > _layer(m))
    assert upward == [("sharehub.__main__", "sharehub.cli")] or upward == [], upward


def test_no_module_imports_itself_back_through_others() -> None:
    graph, _ = _imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in list(graph):
        if module not in index:
            visit(module)
    assert cycles == []


def test_imports_inside_functions_are_the_top_layers_or_say_why() -> None:
    _, inside = _imports()
    unexplained = {
        f"{module}:{line}: {text.strip()}"
        for module, _target, line, text in inside
        if _layer(module) < 2 and "#" not in text
    }
    assert unexplained == set()

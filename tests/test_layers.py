"""The import layering of docs/architecture.md, checked against the code.

Units are ``robot_rl/<package or module>``, ``drivers`` and ``calibration``. Every import
counts, at module level or inside a function, as ``ast`` finds it. The test fails on an
import cycle between units, on an import the architecture table does not list, on a
listed import the code no longer makes (so the page stays true), on an import of a unit
listed below the importer, and on any import of ``robot_rl/ros`` (or rclpy) from the core.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "architecture.md"
TOP_FOLDERS = {"drivers": "drivers", "calibration": "calibration"}  # installed as robot_rl.<name>


def unit_of(module: str) -> str | None:
    """The unit a dotted module name belongs to (None: not robot_rl's)."""
    parts = module.split(".")
    if parts[0] in TOP_FOLDERS:
        return parts[0]
    if parts[0] != "robot_rl" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in TOP_FOLDERS else f"robot_rl/{parts[1]}"


def source_files() -> dict[Path, str]:
    """Each source file of a unit, with its dotted module name."""
    files = {}
    for folder, package in (("robot_rl", "robot_rl"), *((f, f"robot_rl.{f}") for f in TOP_FOLDERS)):
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
            files[path] = ".".join([package, *parts])
    return files


def imported_modules(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, relative imports resolved; ``from a import b`` counts as
    both ``a`` and ``a.b`` (b may be a module)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def import_graph() -> dict[str, dict[str, set[str]]]:
    """unit → imported unit → the files that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path, module in source_files().items():
        source = unit_of(module)
        if source is None:  # robot_rl/__init__.py
            continue
        graph[source]  # a unit that imports nothing is still a unit
        for target in filter(None, map(unit_of, imported_modules(path, module))):
            if target != source:
                graph[source][target].add(str(path.relative_to(REPO)))
    return graph


def documented_layers() -> list[tuple[str, set[str]]]:
    """(unit, the units it imports) from the architecture table, lowest layer first."""
    text = ARCHITECTURE.read_text()
    table = text.split("<!-- layers -->")[1].split("<!-- /layers -->")[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`") or cells[0].startswith("`unit"):
            continue
        unit = cells[0].strip("`").removesuffix("/").removesuffix(".py")
        imports = {u.strip() for u in re.sub(r"[`—]", "", cells[2]).split(",") if u.strip()}
        rows.append((unit_of(f"robot_rl.{unit}"), {unit_of(f"robot_rl.{u}") for u in imports}))
    return rows


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        for other in graph.get(unit, {}):
            if other not in index:
                visit(other)
                low[unit] = min(low[unit], low[other])
            elif other in stack:
                low[unit] = min(low[unit], index[other])
        if low[unit] == index[unit]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == unit:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for unit in sorted(graph):
        if unit not in index:
            visit(unit)
    return found


def test_no_import_cycle_between_units():
    graph = import_graph()
    problems = []
    for component in cycles(graph):
        edges = [f"{a} → {b} ({', '.join(sorted(graph[a][b]))})" for a in component for b in graph[a] if b in component]
        problems.append("cycle: " + "; ".join(edges))
    assert not problems, "\n".join(problems)


def test_imports_follow_the_documented_layers():
    graph = import_graph()
    layers = documented_layers()
    order = [unit for unit, _ in layers]
    problems = [f"{unit}: a unit missing from the table in docs/architecture.md" for unit in graph if unit not in order]
    problems += [f"{unit}: in docs/architecture.md but not in the code" for unit in order if unit not in graph]
    for position, (unit, listed) in enumerate(layers):
        actual = set(graph.get(unit, {}))
        for target in sorted(actual - listed):
            problems.append(f"{unit} imports {target} ({', '.join(sorted(graph[unit][target]))}), which the table "
                            f"does not list")
        problems += [f"{unit}: the table lists {target}, which it no longer imports"
                     for target in sorted(listed - actual)]
        problems += [f"{unit} imports {target}, listed in a higher layer" for target in sorted(actual)
                     if target in order and order.index(target) > position]
    assert not problems, "\n".join(problems)


def test_the_core_never_imports_ros():
    core = [(path, module) for path, module in source_files().items() if unit_of(module) != "robot_rl/ros"]
    offenders = [str(path.relative_to(REPO)) for path, module in core
                 if any(m == "rclpy" or m.startswith(("rclpy.", "robot_rl.ros"))
                        for m in imported_modules(path, module))]
    assert not offenders, f"only robot_rl/ros may import rclpy or robot_rl.ros: {offenders}"


def test_the_check_sees_a_cycle_and_an_import_inside_a_function(tmp_path):
    """An import of robot_rl.sim added inside a function of robot_rl/env is found: a cycle
    (sim imports env) and an import the table does not list."""
    graph = import_graph()
    graph["robot_rl/env"]["robot_rl/sim"].add("robot_rl/env/factory.py")
    assert any({"robot_rl/env", "robot_rl/sim"} <= set(c) for c in cycles(graph))
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from ..sim import tasks\n    import robot_rl.ros.nodes\n")
    assert {"robot_rl.sim", "robot_rl.sim.tasks", "robot_rl.ros.nodes"} <= imported_modules(module,
                                                                                           "robot_rl.env.late")

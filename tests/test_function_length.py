"""No function of the package (or of a benchmark, but its ``main``) is longer than 60 lines:
a longer one is split into steps that read top to bottom."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 60
GENERATED = ("_pb2.py", "_pb2_grpc.py")


def long_functions() -> list[str]:
    found = []
    for folder in ("robot_rl", "drivers", "calibration", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name.endswith(GENERATED):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES and not (folder == "benchmarks" and node.name == "main"):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_over_60_lines():
    assert not long_functions(), "\n".join(long_functions())

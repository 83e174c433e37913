"""Plain-text tables and the ``--json`` last line that benchmarks and commands print."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Right-aligned columns with a rule under the header; floats get 3 significant digits."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        padded = [values[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


def print_report(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], summary: dict[str, Any],
                 as_json: bool) -> None:
    """The table, then (with ``as_json``) ``summary`` as one JSON object on the last line."""
    print(title)
    print(format_table(header, rows))
    if as_json:
        print(json.dumps(summary, sort_keys=True))


def steps_to(curve: Sequence[tuple[int, float]], level: float) -> int | None:
    """The steps of the first point of ``curve`` ((steps, success) pairs, in order) at ``level``
    or above; None if none gets there."""
    return next((steps for steps, success in curve if success >= level), None)


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: ""}[value]
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)

"""The figures of a benchmark's full run, kept where `make benchmarks` finds them.

A full run of a long benchmark (hours: seeds × arms × steps) cannot be part of
`make benchmarks`; it publishes its table instead, to ``benchmarks/results/<name>.json``
with the command, date, machine and commit, and ``benchmarks/make_docs.py`` puts that table
into docs/benchmarks.md beside the quick forms it runs itself.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robot_rl.report import print_report

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    """This machine in one line: CPU model and cores, memory, GPU, torch."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f", {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB"
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {os.cpu_count()} cores{memory}{gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def report(name: str, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], summary: dict[str, Any],
           as_json: bool, publish: bool) -> None:
    """print_report, and with ``publish`` the table and summary to benchmarks/results/<name>.json."""
    print_report(title, header, rows, summary, as_json)
    if publish:
        publish_to(RESULTS / f"{name}.json", title, header, rows, summary)


def publish_to(path: Path, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
               summary: dict[str, Any], machine_line: str | None = None) -> None:
    """The table, the summary, and the command, date, machine and commit that made them."""
    record = {"name": path.stem, "title": title, "header": list(header), "rows": [list(r) for r in rows],
              "summary": summary, "command": "python " + shlex.join(["benchmarks/" + Path(sys.argv[0]).name,
                                                                     *sys.argv[1:]]),
              "date": time.strftime("%Y-%m-%d"), "machine": machine_line or machine(), "commit": commit()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")

"""`make benchmarks`: run every benchmark's quick form and write docs/benchmarks.md.

    python benchmarks/make_docs.py [--only NAME ...] [--out docs/benchmarks.md]

The page holds, for each benchmark, the command that made its table, how long it took, and
the table; above them, the full runs of the long benchmarks (hours: seeds × arms × steps),
from the results they published to benchmarks/results/<name>.json (``published.report``),
each with its own command, date, machine and commit. The machine and date of this run head
the page. The README quotes figures only from this page (tests/test_readme_numbers.py).

A benchmark that fails is noted on the page with its last line of output, and this command
then exits 1. ``--only`` reruns some benchmarks and keeps the others' sections as they were
(``--only`` alone: none, the full runs' sections only, as ``make bench-gpu`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from published import RESULTS, commit, machine

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks.md"
TIMEOUT_S = 1800

#: name → the quick form's arguments (what `make benchmarks` runs; about 15 minutes in all on 2
#: idle cores): smaller budgets than the full forms, so learning figures from them are smoke runs
QUICK: dict[str, list[str]] = {
    "sim_speed": ["--steps", "300", "--episodes", "10"],
    "replay": ["--steps", "5000"],
    "transport": ["--quick"],
    "learner_speed": ["--quick", "--threads", "1"],
    "safety": ["--quick"],
    "reward_models": ["--quick"],
    "learn_sim": ["--task", "reach", "--env-steps", "600", "--eval-every", "300", "--eval-episodes", "5"],
    "hil_effect": ["--quick"],
    "offline": ["--quick"],
    "learned_rewards": ["--demos", "4", "--failures", "4", "--env-steps", "300", "--eval-every", "300",
                        "--eval-episodes", "2"],
    "fleet": ["--actors", "1", "2", "--seconds", "20"],
    "chaos": ["--env-steps", "600", "--learner-kills", "1", "--actor-kills", "1", "--gap", "3", "6"],
}
#: the long benchmarks whose full runs the page shows, from benchmarks/results/<name>.json
FULL = ("hil_effect", "offline", "gpu")


def run_quick(name: str) -> dict:
    command = [sys.executable, f"benchmarks/{name}.py", *QUICK[name], "--json"]
    shown = " ".join(["python", *command[1:]])
    load = os.getloadavg()[0]  # what else the machine was running, for the timing figures
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
        ok, out, err = done.returncode == 0, done.stdout, done.stderr
    except subprocess.TimeoutExpired as e:
        ok, out, err = False, str(e.stdout or ""), f"timed out after {TIMEOUT_S} s"
    wall = time.perf_counter() - started
    lines = out.rstrip("\n").splitlines()
    if ok and lines:
        return {"name": name, "command": shown, "wall_s": round(wall), "load": load, "table": "\n".join(lines[:-1]),
                "ok": True}
    reason = (err.strip().splitlines() or ["no output"])[-1]
    return {"name": name, "command": shown, "wall_s": round(wall), "load": load, "table": f"failed: {reason}",
            "ok": False}


def markdown_table(header: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def full_section(name: str) -> str:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return f"### {name}\n\nNo full run published yet (benchmarks/results/{name}.json).\n"
    run = json.loads(path.read_text())
    return (f"### {name}\n\n`{run['command']}` — {run['date']}, commit {run['commit']}, {run['machine']}\n\n"
            f"{run['title']}\n\n{markdown_table(run['header'], run['rows'])}\n")


def quick_section(result: dict) -> str:
    return (f"### {result['name']}\n\n`{result['command']}` ({result['wall_s']} s; load average "
            f"{result['load']:.1f} on {os.cpu_count()} cores when it started)\n\n"
            f"```text\n{result['table']}\n```\n")


def kept_sections(text: str) -> dict[str, str]:
    """The quick sections of the page as it is, by benchmark name."""
    part = text.split("## Quick forms", 1)[-1] if "## Quick forms" in text else ""
    return {m.group(1): m.group(0).rstrip() + "\n" for m in re.finditer(r"### (\w+)\n.*?(?=\n### |\Z)", part, re.S)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(QUICK),
                        help="rerun these quick forms, keep the others' sections (none: only the full runs)")
    parser.add_argument("--out", default=str(PAGE))
    args = parser.parse_args()
    out = Path(args.out)
    kept = kept_sections(out.read_text()) if args.only is not None and out.exists() else {}
    sections, failed = [], []
    for name in QUICK:
        if args.only is not None and name not in args.only:
            sections.append(kept.get(name, f"### {name}\n\nNot run yet.\n"))
            continue
        print(f"make_docs: {name} ...", file=sys.stderr, flush=True)
        result = run_quick(name)
        failed += [] if result["ok"] else [name]
        sections.append(quick_section(result))
    page = "\n".join([
        "# Benchmarks\n",
        "Written by `make benchmarks` (`benchmarks/make_docs.py`); do not edit by hand. The README quotes "
        "figures only from this page, and `tests/test_readme_numbers.py` fails when it quotes one that is "
        "not here.\n",
        f"Quick forms run on {time.strftime('%Y-%m-%d')}, commit {commit()}, on {machine()}. Timing figures "
        "depend on what else the machine runs; each benchmark's docstring says what it measures and what "
        "flatters it.\n",
        "## Full runs\n",
        "The long benchmarks' last full runs, as they published them (`benchmarks/results/`).\n",
        *(full_section(name) for name in FULL),
        "## Quick forms\n",
        "What `make benchmarks` runs: each benchmark's quick form (smaller budgets than the full runs "
        "above; learning figures from them are smoke runs, not results).\n",
        *sections,
    ])
    out.write_text(page)
    print(f"make_docs: wrote {out}" + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

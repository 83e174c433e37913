"""Calibration results, versioned per rig: ``<dir>/<rig>/<name>-<date-time>.yaml`` keeps every
run, and ``<dir>/<rig>/<name>.yaml`` is the current one (what drivers and configs point at).
Each file opens with comment lines saying when it was made and how good it is."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from robot_rl.files import atomic_write_text


def save_result(directory: str | Path, rig: str, name: str, body: str, summary: dict,
                now: datetime | None = None) -> tuple[Path, Path]:
    """Write ``body`` (YAML) with a header; returns (versioned file, current file)."""
    now = now or datetime.now()
    folder = Path(directory) / rig
    folder.mkdir(parents=True, exist_ok=True)
    header = [f"# robot_rl calibration: {name}, rig {rig}", f"# made {now.isoformat(timespec='seconds')}"]
    header += [f"# {key}: {value}" for key, value in summary.items()]
    text = "\n".join(header) + "\n" + body
    versioned = folder / f"{name}-{now.strftime('%Y-%m-%d_%H-%M-%S')}.yaml"
    current = folder / f"{name}.yaml"
    versioned.write_text(text)
    atomic_write_text(current, text)  # the current file is never half-written
    return versioned, current

"""Workspace bounds from the arm itself: the operator jogs the end effector to the corners of
the box it may work in and marks each one; the box around the marks becomes the
``workspace`` of a safety limits YAML (the other limits are kept from a base file)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import yaml

from robot_rl.calibration.board import CalibrationError
from robot_rl.safety.limits import limits_path, load_limits

MIN_EXTENT = 0.02  # m: a box thinner than this along an axis was not really jogged out


class WorkspaceRecorder:
    def __init__(self) -> None:
        self.points: list[np.ndarray] = []

    def mark(self, ee_position: np.ndarray) -> None:
        position = np.asarray(ee_position, dtype=float).reshape(-1)[:3]
        if not np.all(np.isfinite(position)):
            raise CalibrationError(f"not a position: {position.tolist()}")
        self.points.append(position)

    def box(self, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) around the marked points, shrunk by ``margin`` on every side."""
        if len(self.points) < 2:
            raise CalibrationError(f"mark at least 2 opposite corners of the workspace (got {len(self.points)})")
        pts = np.array(self.points)
        low, high = pts.min(axis=0) + margin, pts.max(axis=0) - margin
        thin = [axis for axis, extent in zip("xyz", high - low, strict=True) if extent < MIN_EXTENT]
        if thin:
            raise CalibrationError(f"the marked corners span less than {MIN_EXTENT * 100:.0f} cm along "
                                   f"{', '.join(thin)}: jog the arm to opposite corners (low and high)")
        return low, high


def write_safety_yaml(low: np.ndarray, high: np.ndarray, base: str, robot: str) -> str:
    """The limits of ``base`` (a name in config/safety or a path) with this workspace, as YAML text.
    Validated before it is returned, so what is written always loads."""
    raw = yaml.safe_load(limits_path(base).read_text())
    raw["robot"] = robot
    raw["workspace"] = {"low": [round(float(v), 4) for v in low], "high": [round(float(v), 4) for v in high]}
    text = yaml.safe_dump(raw, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        check = Path(tmp) / f"{robot}.yaml"
        check.write_text(text)
        load_limits(str(check))
    return text

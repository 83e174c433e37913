"""The config tree of ``robot-rl calibrate``."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rl.schema.robot import Config


@dataclass
class BoardSection:
    kind: str = "charuco"  # charuco | checkerboard
    squares: list[int] = field(default_factory=lambda: [7, 5])  # columns, rows
    square: float = 0.04  # m
    marker: float = 0.03  # m (charuco)
    dictionary: str = "DICT_5X5_100"


@dataclass
class CalibrateSection:
    rig: str = "default"
    dir: str = "rigs"
    camera: str = "wrist"
    source: str = "sim"
    images: str | None = None
    poses: str | None = None
    intrinsics: str | None = None
    setup: str = "eye_in_hand"
    method: str = "park"
    views: int = 20
    tilt_deg: float = 18.0
    margin: float = 0.0
    base_limits: str = "sim_panda"
    board: BoardSection = field(default_factory=BoardSection)


@dataclass
class CalibrateConfig(Config):
    calibrate: CalibrateSection = field(default_factory=CalibrateSection)

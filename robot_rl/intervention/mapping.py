"""From an operator's twist to the env's normalised action, in the frame they expect.

``frame=base``: the twist is in the operator's frame, which is the robot base frame turned
by ``operator_yaw`` about the vertical (an operator across the table has yaw π).
``frame=ee``: the twist is in the end-effector frame (push "forward" = along the tool).
Either way the result is a base-frame end-effector delta, as RobotEnv's actions are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl.env.robot_env import ActionSpec
from robot_rl.teleop.device import TeleopSample


@dataclass(frozen=True)
class TwistMapping:
    frame: str = "base"  # base | ee
    operator_yaw: float = 0.0  # rad, base frame → operator frame about z
    translation_scale: float = 1.0
    rotation_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.frame not in ("base", "ee"):
            raise ValueError(f"teleop frame must be 'base' or 'ee', got {self.frame!r}")


class TeleopMapper:
    """Turns samples into actions; remembers the last gripper command between presses."""

    def __init__(self, spec: ActionSpec, mapping: TwistMapping = TwistMapping()):
        self.spec, self.mapping = spec, mapping
        self._operator = Rotation.from_euler("z", mapping.operator_yaw).as_matrix()
        self.reset()

    def reset(self) -> None:
        """At an episode start: the gripper starts open."""
        self._gripper = 0.0 if self.spec.gripper_mode == "toggle" else -1.0

    def action(self, sample: TeleopSample, ee_quat_wxyz: np.ndarray) -> np.ndarray:
        """The normalised action for ``sample`` given the current end-effector orientation."""
        if self.mapping.frame == "ee":
            rotation = Rotation.from_quat(ee_quat_wxyz, scalar_first=True).as_matrix()
        else:
            rotation = self._operator
        linear = rotation @ sample.twist[:3] * self.mapping.translation_scale
        angular = rotation @ sample.twist[3:] * self.mapping.rotation_scale
        if sample.gripper is not None:
            self._gripper = sample.gripper
        grip = self._gripper
        if self.spec.gripper_mode == "toggle" and sample.gripper is None:
            grip = 0.0  # toggle mode: no press, no change
        parts = [linear] + ([angular] if self.spec.rotation else []) + ([[grip]] if self.spec.gripper else [])
        return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)

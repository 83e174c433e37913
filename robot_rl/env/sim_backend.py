"""The simulated rig as a :class:`RobotBackend`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from robot_rl.drivers.sim import SimArm, SimCamera, SimGripper
from robot_rl.env.backend import RobotBackend
from robot_rl.sim.simulation import ArmSimulation, Pose


class SimBackend(RobotBackend):
    def __init__(
        self,
        camera_sizes: Mapping[str, tuple[int, int]],
        home_ee_pos: Sequence[float] = (0.45, 0.0, 0.2),
        start_noise: Sequence[float] = (0.04, 0.04, 0.03),
        physics_dt: float = 0.002,
    ):
        self.sim = ArmSimulation(physics_dt=physics_dt)
        self.sim.set_home(np.asarray(home_ee_pos, dtype=float))
        self.start_noise = np.asarray(start_noise, dtype=float)
        self.arm = SimArm(self.sim)
        self.gripper = SimGripper(self.sim)
        self.cameras = {name: SimCamera(self.sim, name, h, w) for name, (h, w) in camera_sizes.items()}

    def reset(self, rng: np.random.Generator) -> None:
        home = self.sim.ee_home
        start = Pose(home.pos + rng.uniform(-self.start_noise, self.start_noise), home.quat)
        q = self.sim.solve_ik(start, self.sim.home_q)
        self.sim.reset(q, self.gripper.max_width)

    def advance(self, duration: float) -> None:
        self.sim.advance(duration)

    def close(self) -> None:
        super().close()
        self.sim.close()

"""The simulated rig as a :class:`RobotBackend`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from robot_rl.env.backend import RobotBackend
from robot_rl.safety import EStop, SafeArm, SafetyLimits, load_limits
from robot_rl.sim.drivers import SimArm, SimCamera, SimGripper
from robot_rl.sim.simulation import ARM_JOINTS, ArmSimulation, Pose


class SimBackend(RobotBackend):
    """The arm and gripper drivers behind a :class:`SafeArm` on the sim's clock.

    Time only passes in :meth:`advance`, so that is where the watchdog is checked: time
    advances in chunks of one control period and the safety layer ticks after each, so
    with commands stopped the arm halts within one control period after the timeout.
    """

    def __init__(
        self,
        camera_sizes: Mapping[str, tuple[int, int]],
        home_ee_pos: Sequence[float] = (0.45, 0.0, 0.2),
        start_noise: Sequence[float] = (0.04, 0.04, 0.03),
        physics_dt: float = 0.002,
        limits: SafetyLimits | None = None,
        control_period: float = 0.1,
        estop: EStop | None = None,
    ):
        self.sim = ArmSimulation(physics_dt=physics_dt)
        self.sim.set_home(np.asarray(home_ee_pos, dtype=float))
        self.start_noise = np.asarray(start_noise, dtype=float)
        self.control_period = control_period
        limits = load_limits("sim_panda", ARM_JOINTS) if limits is None else limits
        self.arm = SafeArm.from_limits(SimArm(self.sim), limits, control_period, clock=lambda: self.sim.time,
                                       gripper=SimGripper(self.sim), estop=estop)
        self.gripper = self.arm.gripper
        self.cameras = {name: SimCamera(self.sim, name, h, w) for name, (h, w) in camera_sizes.items()}

    def reset(self, rng: np.random.Generator) -> None:
        home = self.sim.ee_home
        start = Pose(home.pos + rng.uniform(-self.start_noise, self.start_noise), home.quat)
        q = self.sim.solve_ik(start, self.sim.home_q)
        self.sim.reset(q, self.gripper.max_width)  # a teleport: nothing is commanded
        self.arm.reset()

    def advance(self, duration: float) -> None:
        remaining = duration
        while remaining > 1e-9:
            chunk = min(self.control_period, remaining)
            self.sim.advance(chunk)
            remaining -= chunk
            self.arm.tick()

    def close(self) -> None:
        super().close()
        self.sim.close()

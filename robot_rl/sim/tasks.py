"""The simulated tasks: randomised layouts, ground-truth success and progress.

Progress is a privileged, monotone-by-design measure of how far an episode has got (the
staged distances below). It exists to score reward models against, not to train on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.env.task import Task, TaskStatus
from robot_rl.registry import Registry
from robot_rl.sim.simulation import CUBE_HALF_SIZE, ArmSimulation

SIM_TASKS: Registry[type[SimTask]] = Registry("task")


@dataclass(frozen=True)
class Region:
    """An axis-aligned box of positions (base frame) that objects are drawn from."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high)


def _closeness(distance: float, scale: float) -> float:
    """1 at distance 0, falling linearly to 0 at ``scale``."""
    return float(np.clip(1.0 - distance / max(scale, 1e-6), 0.0, 1.0))


class SimTask(Task):
    """A task on :class:`ArmSimulation`; its layout regions come from the task config."""

    def __init__(self, sim: ArmSimulation, cube_region: Region, target_region: Region, success_radius: float):
        self.sim = sim
        self.cube_region = cube_region
        self.target_region = target_region
        self.success_radius = success_radius
        self._start_distance = 1.0

    def _place_cube(self, rng: np.random.Generator) -> np.ndarray:
        pos = self.cube_region.sample(rng)
        pos[2] = CUBE_HALF_SIZE
        self.sim.place_cube(pos, yaw=rng.uniform(-np.pi / 4, np.pi / 4))
        return pos


@SIM_TASKS.register("reach")
class ReachTask(SimTask):
    """Bring the gripper's tool point to a target marker floating above the table."""

    name = "reach"

    def reset(self, rng: np.random.Generator) -> None:
        self.sim.place_cube(np.array([0.25, 0.35, CUBE_HALF_SIZE]), 0.0)  # parked out of the way
        target = self.target_region.sample(rng)
        self.sim.place_target(target, shape="ball")
        self._start_distance = float(np.linalg.norm(self.sim.ee_pose().pos - target))

    def status(self) -> TaskStatus:
        d = float(np.linalg.norm(self.sim.ee_pose().pos - self.sim.target_pos()))
        success = d < self.success_radius
        return TaskStatus(success, 1.0 if success else _closeness(d, self._start_distance))


@SIM_TASKS.register("push_cube")
class PushCubeTask(SimTask):
    """Push the cube across the table onto the target disc."""

    name = "push_cube"

    def reset(self, rng: np.random.Generator) -> None:
        cube = self._place_cube(rng)
        for _ in range(100):  # targets too close to the start would make the task trivial
            target = self.target_region.sample(rng)
            if np.linalg.norm(target[:2] - cube[:2]) > 2 * self.success_radius + 0.04:
                break
        target[2] = 0.001
        self.sim.place_target(target)
        self._start_cube_distance = float(np.linalg.norm(target[:2] - cube[:2]))
        self._start_reach_distance = float(np.linalg.norm(self.sim.ee_pose().pos - cube))

    def status(self) -> TaskStatus:
        cube, target = self.sim.cube_pos(), self.sim.target_pos()
        d_cube = float(np.linalg.norm(target[:2] - cube[:2]))
        if d_cube < self.success_radius:
            return TaskStatus(True, 1.0)
        d_reach = max(0.0, float(np.linalg.norm(self.sim.ee_pose().pos - cube)) - 2 * CUBE_HALF_SIZE)
        progress = 0.3 * _closeness(d_reach, self._start_reach_distance) + 0.7 * _closeness(
            d_cube - self.success_radius, self._start_cube_distance - self.success_radius
        )
        return TaskStatus(False, min(progress, 0.99))


@SIM_TASKS.register("pick_cube")
class PickCubeTask(SimTask):
    """Grasp the cube and lift it to the target height above the table."""

    name = "pick_cube"

    def __init__(self, sim: ArmSimulation, cube_region: Region, target_region: Region, success_radius: float,
                 lift_height: float = 0.08):
        super().__init__(sim, cube_region, target_region, success_radius)
        self.lift_height = lift_height

    def reset(self, rng: np.random.Generator) -> None:
        cube = self._place_cube(rng)
        self.sim.place_target(cube + [0.0, 0.0, self.lift_height], shape=None)
        self._start_reach_distance = float(np.linalg.norm(self.sim.ee_pose().pos - cube))

    def status(self) -> TaskStatus:
        cube = self.sim.cube_pos()
        lifted = cube[2] - CUBE_HALF_SIZE
        if lifted >= self.lift_height:
            return TaskStatus(True, 1.0)
        reach = _closeness(float(np.linalg.norm(self.sim.ee_pose().pos - cube)), self._start_reach_distance)
        grasped = self.sim.fingers_touch_cube()
        lift = float(np.clip(lifted / self.lift_height, 0.0, 1.0)) if grasped else 0.0
        return TaskStatus(False, min(0.4 * reach + 0.2 * grasped + 0.4 * lift, 0.99))

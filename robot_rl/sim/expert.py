"""A scripted expert for each simulated task, acting on privileged sim state.

It stands in for a skilled operator: in rollouts and demos, for the simulated operator of
human-in-the-loop runs, and as the reference every learned policy is compared against.
Each task's script is a small phase machine; phases only move forward within an episode
except where the scene changed under it (a slipped cube), where it starts the approach again.
"""

from __future__ import annotations

import numpy as np

from robot_rl.env.robot_env import RobotEnv
from robot_rl.sim.simulation import CUBE_HALF_SIZE, ArmSimulation
from robot_rl.sim.tasks import PickCubeTask, PushCubeTask, ReachTask

OPEN, CLOSE = -1.0, 1.0


class ScriptedExpert:
    def __init__(self, env: RobotEnv, noise: float = 0.0, seed: int | None = None):
        from robot_rl.sim.backend import SimBackend

        base = env.unwrapped
        if not isinstance(base, RobotEnv) or not isinstance(base.backend, SimBackend):
            raise ValueError("the scripted expert needs privileged state: use it with the simulated robot (robot=sim)")
        self.env, self.sim, self.task, self.spec = base, base.backend.sim, base.task, base.action_spec
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self._phase = "approach"
        self._episode_step = -1
        self._closing_steps = 0

    def act(self, obs: object = None) -> np.ndarray:
        if self.env.steps <= self._episode_step or self._episode_step < 0:
            self._start_episode()
        self._episode_step = self.env.steps
        if isinstance(self.task, ReachTask):
            target, grip = self.sim.target_pos(), OPEN
        elif isinstance(self.task, PushCubeTask):
            target, grip = self._push()
        elif isinstance(self.task, PickCubeTask):
            target, grip = self._pick()
        else:
            raise ValueError(f"no scripted expert for task {self.task.name!r}")
        action = self.spec.normalise(target - self.sim.ee_pose().pos, None, grip)
        if self.noise > 0:
            action = np.clip(action + self.rng.normal(0.0, self.noise, action.shape), -1, 1).astype(np.float32)
        return action

    def _start_episode(self) -> None:
        self._phase = "approach"

    def _pick(self) -> tuple[np.ndarray, float]:
        sim: ArmSimulation = self.sim
        ee, cube = sim.ee_pose().pos, sim.cube_pos()
        xy_err = float(np.linalg.norm(cube[:2] - ee[:2]))
        if self._phase == "approach":
            if xy_err < 0.008:
                self._phase = "descend"
            return cube + [0.0, 0.0, 0.07], OPEN
        if self._phase == "descend":
            if xy_err > 0.025:
                self._phase = "approach"
            elif abs(ee[2] - cube[2]) < 0.008:
                self._phase, self._closing_steps = "close", 0
            return cube, OPEN
        if self._phase == "close":
            self._closing_steps += 1
            if self._closing_steps >= 3 and sim.fingers_touch_cube():
                self._phase = "lift"
            elif self._closing_steps >= 6:  # closed on nothing: start over
                self._phase = "approach"
            return cube, CLOSE
        # lift
        if not sim.fingers_touch_cube() and cube[2] < CUBE_HALF_SIZE + 0.005:
            self._phase = "approach"  # dropped it
            return cube + [0.0, 0.0, 0.07], OPEN
        return np.array([cube[0], cube[1], CUBE_HALF_SIZE + self.task.lift_height + 0.04]), CLOSE

    def _push(self) -> tuple[np.ndarray, float]:
        sim: ArmSimulation = self.sim
        ee, cube, target = sim.ee_pose().pos, sim.cube_pos(), sim.target_pos()
        u = target[:2] - cube[:2]
        u /= max(np.linalg.norm(u), 1e-6)
        standoff = CUBE_HALF_SIZE + 0.025
        behind = np.array([*(cube[:2] - u * standoff), 0.0])
        rel = ee[:2] - cube[:2]
        along, lateral = float(rel @ u), float(abs(rel[0] * u[1] - rel[1] * u[0]))
        if self._phase == "approach":
            if np.linalg.norm(ee[:2] - behind[:2]) < 0.01:
                self._phase = "descend"
            return behind + [0.0, 0.0, 2 * CUBE_HALF_SIZE + 0.04], CLOSE
        if self._phase == "descend":
            if np.linalg.norm(ee[:2] - behind[:2]) > 0.03:
                self._phase = "approach"
            elif ee[2] < CUBE_HALF_SIZE + 0.012:
                self._phase = "push"
            return behind + [0.0, 0.0, CUBE_HALF_SIZE + 0.005], CLOSE
        # push: aim a little past the cube along the push line, keeping on the line
        if lateral > 0.02 or along > -CUBE_HALF_SIZE:
            self._phase = "approach"
            return np.array([ee[0], ee[1], 2 * CUBE_HALF_SIZE + 0.04]), CLOSE
        goal = cube[:2] - u * (standoff - 0.03)
        return np.array([*goal, CUBE_HALF_SIZE + 0.005]), CLOSE


NEAR_MISSES = ("low_lift", "beside", "drop")


class NearMissExpert(ScriptedExpert):
    """The pick_cube expert failing on purpose, the way a failure looks most like success:

    - ``low_lift``: grasps the cube and holds it ``low_lift`` (1 cm) above the table;
    - ``beside``: lowers the open gripper to the table ``beside`` (5 cm) from the cube and closes it;
    - ``drop``: lifts the cube ``drop_height`` (4 cm), lets go, and goes back to where it started.

    Hard negatives for a success classifier, and failures a progress model must not score as
    done. :attr:`missed` says whether the near miss has happened yet (from then on the frames
    are the hard ones: the cube held low, the gripper closed beside it, the cube let go).
    """

    def __init__(self, env: RobotEnv, kind: str, seed: int | None = None, low_lift: float = 0.01,
                 beside: float = 0.05, drop_height: float = 0.04):
        super().__init__(env, seed=seed)
        if kind not in NEAR_MISSES:
            raise ValueError(f"near miss must be one of {', '.join(NEAR_MISSES)}, got {kind!r}")
        if not isinstance(self.task, PickCubeTask):
            raise ValueError(f"near misses are scripted for pick_cube, not {self.task.name!r}")
        self.kind, self.low_lift, self.beside, self.drop_height = kind, low_lift, beside, drop_height
        self._start_episode()

    def _start_episode(self) -> None:
        super()._start_episode()
        self.missed = False
        self._aim = self._start = None

    def _pick(self) -> tuple[np.ndarray, float]:
        if self._start is None:
            self._start = self.sim.ee_pose().pos
        if self.kind == "beside":
            return self._close_beside()
        cube = self.sim.cube_pos()
        lifted = cube[2] - CUBE_HALF_SIZE
        if self._phase == "lift" and self.kind == "low_lift":
            self.missed = self.missed or (lifted > self.low_lift / 2 and self.sim.fingers_touch_cube())
            ee = self.sim.ee_pose().pos  # the cube hangs a little below the tool point: aim the cube itself
            return np.array([cube[0], cube[1], ee[2] + self.low_lift - lifted]), CLOSE
        if self._phase == "lift" and self.kind == "drop" and lifted >= self.drop_height:
            self._phase = "let_go"
        if self._phase == "let_go":
            self.missed = True
            return self._start, OPEN
        return super()._pick()

    def _close_beside(self) -> tuple[np.ndarray, float]:
        ee = self.sim.ee_pose().pos
        if self._aim is None:
            side = self.rng.choice([-1.0, 1.0])  # across the fingers' line (base y), so they close on the table
            self._aim = self.sim.cube_pos() + [side * self.beside, 0.0, 0.0]
        if self._phase == "approach":
            if np.linalg.norm(self._aim[:2] - ee[:2]) < 0.008:
                self._phase = "descend"
            return self._aim + [0.0, 0.0, 0.07], OPEN
        if self._phase == "descend" and abs(ee[2] - self._aim[2]) < 0.008:
            self._phase = "close"
        if self._phase == "close":
            self.missed = self.missed or self.sim.gripper_width() < 0.01
            return self._aim, CLOSE
        return self._aim, OPEN

"""RobotEnv: the gymnasium seam between robots and the learning stack.

Whatever the backend (sim, direct drivers, ROS), the env exposes the same spaces:
observations are a dict of uint8 camera images plus a float32 ``state`` vector of
proprioception, and actions are a normalised Box in [-1, 1] holding an end-effector delta
(translation, optionally rotation, both in the robot base frame) and optionally a gripper
command (+1 closes, -1 opens). Time limits end episodes as truncations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl.drivers.base import ArmState, GripperState, moved_pose
from robot_rl.env.backend import RobotBackend
from robot_rl.env.image import CropResize
from robot_rl.env.task import Task, TaskStatus
from robot_rl.safety import EStop, SafeArm, SafetyEvent

STATE_KEY = "state"


@dataclass(frozen=True)
class ActionSpec:
    """How a normalised action maps to a command: metres and radians per step at |a| = 1."""

    pos_step: float
    rot_step: float = 0.0
    rotation: bool = False
    gripper: bool = True
    # absolute: the command sets the opening (+1 closed, -1 open, between: partly open);
    # toggle (HIL-SERL): above 0.5 closes, below -0.5 opens, in between keeps it as it is
    gripper_mode: str = "absolute"

    def __post_init__(self) -> None:
        if self.pos_step <= 0 or (self.rotation and self.rot_step <= 0):
            raise ValueError(f"action step sizes must be > 0, got pos_step={self.pos_step} rot_step={self.rot_step}")
        if self.gripper_mode not in ("absolute", "toggle"):
            raise ValueError(f"gripper_mode must be 'absolute' or 'toggle', got {self.gripper_mode!r}")

    @property
    def dim(self) -> int:
        return 3 + 3 * self.rotation + self.gripper

    def split(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
        """(translation in m, rotation vector in rad, gripper command or None)."""
        dpos = action[:3] * self.pos_step
        drot = action[3:6] * self.rot_step if self.rotation else np.zeros(3)
        grip = float(action[-1]) if self.gripper else None
        return dpos, drot, grip

    def normalise(self, dpos: np.ndarray, drot: np.ndarray | None = None, grip: float | None = None) -> np.ndarray:
        """The action that asks for ``dpos``/``drot``/``grip``, clipped to [-1, 1]."""
        parts = [np.asarray(dpos) / self.pos_step]
        if self.rotation:
            parts.append(np.zeros(3) if drot is None else np.asarray(drot) / self.rot_step)
        if self.gripper:
            parts.append([0.0 if grip is None else grip])
        return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)


def _rot6d(quat_wxyz: np.ndarray) -> np.ndarray:
    """First two columns of the rotation matrix: continuous, unlike a quaternion's sign."""
    matrix = Rotation.from_quat(quat_wxyz, scalar_first=True).as_matrix()
    return matrix[:, :2].T.reshape(6)


def _canonical_quat(quat_wxyz: np.ndarray) -> np.ndarray:
    return quat_wxyz if quat_wxyz[0] >= 0 else -quat_wxyz


@dataclass(frozen=True)
class ProprioFeature:
    """One named part of the ``state`` vector, with a physical bound on its magnitude."""

    size: Callable[[int], int]  # given the arm's joint count
    bound: float
    read: Callable[[ArmState, GripperState | None], np.ndarray]


def _gripper_width(arm: ArmState, gripper: GripperState | None) -> np.ndarray:
    return np.array([0.0 if gripper is None else gripper.width])


PROPRIO: dict[str, ProprioFeature] = {
    "ee_pos": ProprioFeature(lambda n: 3, 5.0, lambda a, g: a.ee_pose[:3]),  # metres
    "ee_quat": ProprioFeature(lambda n: 4, 1.0, lambda a, g: _canonical_quat(a.ee_pose[3:])),
    "ee_rot6d": ProprioFeature(lambda n: 6, 1.0, lambda a, g: _rot6d(a.ee_pose[3:])),
    "gripper": ProprioFeature(lambda n: 1, 1.0, _gripper_width),  # metres
    "q": ProprioFeature(lambda n: n, 2 * np.pi, lambda a, g: a.q),  # rad
    "dq": ProprioFeature(lambda n: n, 100.0, lambda a, g: a.dq),  # rad/s
    "wrench": ProprioFeature(lambda n: 6, 1e4, lambda a, g: a.wrench),  # N, N·m
}


def observation_space(image_sizes: Mapping[str, Sequence[int]], proprio: Sequence[str],
                      n_joints: int) -> gym.spaces.Dict:
    """The observation space of a RobotEnv with these cameras (name → (height, width)) and
    proprio features; a learner builds it from config without a robot."""
    unknown = [k for k in proprio if k not in PROPRIO]
    if unknown:
        raise ValueError(f"unknown proprio feature(s) {unknown}; choose from {sorted(PROPRIO)}")
    bound = np.concatenate([np.full(PROPRIO[k].size(n_joints), PROPRIO[k].bound) for k in proprio]).astype(np.float32)
    spaces: dict[str, gym.Space] = {name: gym.spaces.Box(0, 255, (*size, 3), np.uint8)
                                    for name, size in image_sizes.items()}
    spaces[STATE_KEY] = gym.spaces.Box(-bound, bound, dtype=np.float32)
    return gym.spaces.Dict(spaces)


class RobotEnv(gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        backend: RobotBackend,
        task: Task,
        action: ActionSpec,
        images: Mapping[str, CropResize],
        proprio: Sequence[str] = ("ee_pos", "ee_rot6d", "gripper"),
        max_steps: int = 100,
        control_hz: float = 10.0,
        reward: str = "sparse",
        terminate_on_success: bool = True,
        render_mode: str | None = None,
    ):
        missing = [name for name in images if name not in backend.cameras]
        if missing:
            raise ValueError(f"camera(s) {missing} are configured but the robot has only {sorted(backend.cameras)}")
        if not isinstance(backend.arm, SafeArm):
            raise ValueError("the robot's arm must be wrapped in robot_rl.safety.SafeArm: every command passes the "
                             "safety chain")
        if action.gripper and backend.gripper is None:
            raise ValueError("the action has a gripper command but the robot has no gripper")
        if reward not in ("sparse", "dense"):
            raise ValueError(f"reward must be 'sparse' or 'dense', got {reward!r}")
        if max_steps <= 0 or control_hz <= 0:
            raise ValueError(f"max_steps and control_hz must be > 0, got {max_steps} and {control_hz}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.backend, self.task, self.action_spec, self.images = backend, task, action, dict(images)
        self.proprio = tuple(proprio)
        self.max_steps, self.control_dt = max_steps, 1.0 / control_hz
        self.reward_kind, self.terminate_on_success = reward, terminate_on_success
        self.safety: SafeArm = backend.arm
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": control_hz}

        n_joints = backend.arm.state().q.shape[0]
        self.observation_space = observation_space({k: t.size for k, t in self.images.items()}, self.proprio,
                                                   n_joints)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action.dim,), np.float32)
        self._steps = 0
        self._last_obs: dict[str, np.ndarray] | None = None
        self._last_status = TaskStatus(False, 0.0)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.backend.reset(self.np_random)
        self.task.reset(self.np_random)
        self._steps = 0
        self._gripper_goal = None if self.backend.gripper is None else self.backend.gripper.state().width
        self._last_status = self.task.status()
        obs = self._observe()
        return obs, self._info(self._last_status, self.safety.take_events())

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action has NaN or inf entries: {action.tolist()}; nothing was sent to the robot")
        dpos, drot, grip = self.action_spec.split(np.clip(action, -1.0, 1.0))

        # the target may lie outside the workspace or move too fast: the arm's safety chain
        # makes it safe (and says so in info["safety_events"])
        ee = self.backend.arm.state().ee_pose
        if self.action_spec.rotation:
            target = moved_pose(ee, dpos, drot)
        else:
            target = np.concatenate([ee[:3] + dpos, self.backend.arm.home_pose[3:]])
        self.backend.arm.command(target)
        if grip is not None:
            self.backend.gripper.command(self._gripper_target(grip))
        self.backend.advance(self.control_dt)
        self._steps += 1

        obs = self._observe()
        events = self.safety.take_events()
        status = self._last_status = self.task.status()
        reward = self.reward_for(status)
        terminated = status.success and self.terminate_on_success
        truncated = not terminated and self._steps >= self.max_steps
        return obs, reward, terminated, truncated, self._info(status, events)

    def reward_for(self, status: TaskStatus) -> float:
        """The reward of a step that ends in ``status``: sparse, 1 on success and 0 otherwise;
        dense, progress − 1 (≤ 0, so that finishing early pays; 0 on success)."""
        return float(status.success) if self.reward_kind == "sparse" else status.progress - 1.0

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._last_obs is None:
            return None
        return tile_images([self._last_obs[name] for name in self.images])

    def close(self) -> None:
        self.backend.close()

    # ------------------------------------------------------------------ helpers
    def _gripper_target(self, command: float) -> float:
        full = self.backend.gripper.max_width
        if self.action_spec.gripper_mode == "absolute":
            return full * (1.0 - command) / 2
        if command > 0.5:
            self._gripper_goal = 0.0
        elif command < -0.5:
            self._gripper_goal = full
        return self._gripper_goal

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def workspace(self) -> tuple[np.ndarray, np.ndarray]:
        """The box (low, high; m, base frame) the end effector stays in (targets keep the safety
        limits' ``tracking_margin`` inside it)."""
        box = self.safety.limits.workspace
        return np.asarray(box.low), np.asarray(box.high)

    @property
    def estop(self) -> EStop:
        """The robot's e-stop latch: ``estop.trigger(source, reason)``; only ``estop.reset()`` clears it."""
        return self.safety.estop

    @property
    def safety_counts(self) -> dict[str, int]:
        """Safety interventions by reason over the env's life (each step's are in ``info["safety_events"]``)."""
        return dict(self.safety.counts)

    def _observe(self) -> dict[str, np.ndarray]:
        obs = {}
        for name, t in self.images.items():
            frame = self.backend.cameras[name].read()
            self.safety.observed(name, frame.stamp)  # a camera gone stale halts the arm
            obs[name] = t(frame.image)
        arm = self.backend.arm.state()
        grip = None if self.backend.gripper is None else self.backend.gripper.state()
        state = np.concatenate([PROPRIO[k].read(arm, grip) for k in self.proprio]).astype(np.float32)
        obs[STATE_KEY] = np.clip(state, self.observation_space[STATE_KEY].low, self.observation_space[STATE_KEY].high)
        self._last_obs = obs
        return obs

    @staticmethod
    def _info(status: TaskStatus, events: Sequence[SafetyEvent]) -> dict[str, Any]:
        return {"is_success": status.success, "progress": status.progress, "safety_events": list(events)}


def tile_images(images: Sequence[np.ndarray]) -> np.ndarray:
    """Side by side, each padded to the tallest."""
    height = max(im.shape[0] for im in images)
    padded = [np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0))) for im in images]
    return np.concatenate(padded, axis=1)

"""Auditing the safety chain at the arm: commands sent straight to the simulated arm's
:class:`~robot_rl.safety.SafeArm` (no env in between, so none of its action scaling or
caps), chosen to hit every filter of the chain, and every limit checked on what reached
the arm's drivers and on the simulator's ground truth, not on the chain's word.

The commands (:class:`Adversary`): far jumps held for several commands, fast back-and-forth
sweeps (abrupt reversals), big turns and orientations far outside the bounds, targets under
the table and outside the box, pressing down on the cube with the gripper shut, NaN, inf
and malformed commands, gripper slams, silences longer than the watchdog's timeout, and
(``joint_targets``) joint targets past the joint limits and far from the current joints.
They come at intervals from the control period down to one physics step (a faster sender,
such as a teleop device, is how the speed limit binds apart from the step limit).

The SafeArm is the one the sim backend builds; its arm and gripper drivers are wrapped in
recorders that check each command that reaches them (:class:`GroundTruth`): the move from
the measured pose against the step, speed and acceleration limits, turns likewise, joint
targets against the joint limits less the margin and the joint speeds, gripper openings
against their range and rate (with the limits' own definitions: dt is the time since the
last command, at most one control period; slowing down to a stop is always allowed). The
measured arm is checked every 10 ms of sim time (the SafeArm's watchdog ticks as often):
the end effector inside the workspace box and its orientation inside its bounds (commands
keep ``tracking_margin`` and ``rot_tracking_margin`` inside them), the joints inside their
limits, no gripper geom in the table. Measured joint speeds are reported, not judged: the
chain can only stop an arm it sees going too fast.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from robot_rl.drivers.base import Arm, ArmState, Gripper, GripperState
from robot_rl.env.robot_env import RobotEnv
from robot_rl.safety import Command, SafeArm, SafetyLimits
from robot_rl.safety.rotations import TAU, quat_angle, quat_to_rpy, rpy_to_quat
from robot_rl.sim.audit import table_penetration

#: the filters of the default chain, by the name their events carry
CHAIN_FILTERS = ("finite", "contact", "joints", "workspace", "step", "speed", "acceleration", "gripper")
#: check → (what its peak measures, < 0 meaning inside by that much; the peak above which it is a violation)
CHECKS: dict[str, tuple[str, float]] = {
    "box": ("m the measured end effector is outside the workspace box", 0.0),
    "orientation": ("rad the measured roll, pitch or yaw is outside its bounds", 0.0),
    "joint_position": ("rad a measured joint is past its limit", 0.0),
    "table": ("m a gripper geom is inside the table", 0.0),
    "step": ("m a commanded move is over max_step", 1e-6),
    "speed": ("m a commanded move is over max_speed × dt", 1e-6),
    "acceleration": ("m a commanded move is outside what max_acceleration allows", 1e-6),
    "rotation_step": ("rad a commanded rotation is over max_rot_step", 1e-6),
    "rotation_speed": ("rad a commanded rotation is over max_rot_speed × dt", 1e-6),
    "rotation_acceleration": ("rad a commanded turn is outside what max_rot_acceleration allows", 1e-6),
    "joint_target": ("rad a commanded joint target is inside the margin or past the limit, further than now", 1e-6),
    "joint_target_speed": ("rad a commanded joint target is over max_velocity × dt", 1e-6),
    "gripper_range": ("m a commanded opening is outside [min_width, max_width], further than before", 1e-6),
    "gripper_rate": ("m a commanded opening is over max_speed × dt", 1e-6),
}
SAMPLE_S = 0.01  # sim seconds between ground-truth checks of the measured arm
OVERSPEED_WINDOW_S = 0.2  # a measured violation this soon after a joint over its speed limit is counted apart too
#: seconds between commands: the control period, slower, and faster senders down to one physics step
INTERVALS = (0.1, 0.1, 0.1, 0.15, 0.05, 0.02, 0.01, 0.002)


@dataclass
class ArmAuditResult:
    commands: int = 0  # commands submitted to the SafeArm
    sim_seconds: float = 0.0
    acted: Counter[str] = field(default_factory=Counter)  # filter → commands it changed (a watchdog halt counts)
    events: Counter[str] = field(default_factory=Counter)  # reason → events
    violations: Counter[str] = field(default_factory=Counter)  # check → times over its limit (ground truth)
    peak: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CHECKS, -math.inf))  # see CHECKS
    max_contact_force: float = 0.0  # N, measured at the gripper
    # Not limits the chain can keep (it stops an arm it sees too fast, after the fact):
    overspeed_samples: int = 0  # checks with a measured joint over its speed limit
    max_joint_speed_ratio: float = 0.0  # the fastest measured joint ÷ its speed limit
    after_overspeed: Counter[str] = field(default_factory=Counter)  # violations of the measured arm ≤ 0.2 s after

    @property
    def total_violations(self) -> int:
        return sum(self.violations.values())

    @property
    def unexercised(self) -> list[str]:
        """The chain's filters that never acted on a command."""
        return [f for f in CHAIN_FILTERS if self.acted[f] == 0]


def _angle_excess(angle: float, lo: float, hi: float, wraps: bool) -> float:
    """How far ``angle`` is outside [lo, hi] (on the circle if ``wraps``); < 0: inside, by."""
    if not wraps:
        return max(lo - angle, angle - hi)
    if hi - lo >= TAU:
        return -math.inf
    d = (angle - lo) % TAU
    return min(d - (hi - lo), TAU - d) if d > hi - lo else -min(d, hi - lo - d)


def _unwrap(rpy: tuple[float, float, float], around: tuple[float, float, float]) -> np.ndarray:
    """Roll and yaw of ``rpy`` within π of ``around``'s (pitch does not wrap)."""
    r, p, y = rpy
    return np.array([around[0] + (r - around[0] + math.pi) % TAU - math.pi, p,
                     around[2] + (y - around[2] + math.pi) % TAU - math.pi])


def _hull_excess(move: np.ndarray, center: np.ndarray, radius: float) -> float:
    """How far ``move`` is outside what an acceleration limit allows: within ``radius`` of
    ``center`` (the last velocity over dt), or a shorter move in such a direction (slowing
    down, to a stop). min over s ≥ 1 of |s·move − center|, less ``radius``."""
    mm = float(move @ move)
    if mm <= 1e-18:  # no move (round-off): stopping is always allowed
        return -radius
    s = max(1.0, float(move @ center) / mm)
    return float(np.linalg.norm(s * move - center)) - radius


class GroundTruth:
    """Checks each command that reaches the arm's drivers, and the measured arm, against
    ``limits``; counts what is over a limit into ``result``. Its own arithmetic, on the
    simulator's state: it asks the chain nothing."""

    def __init__(self, env: RobotEnv, result: ArmAuditResult):
        self.env, self.sim, self.result = env, env.backend.sim, result
        limits: SafetyLimits = env.safety.limits
        self.limits, self.period = limits, env.backend.control_period
        joints = list(limits.joints.limits.values())
        self.lower, self.upper = np.array([j.lower for j in joints]), np.array([j.upper for j in joints])
        self.max_dq = np.array([j.max_velocity for j in joints])
        self.low, self.high = np.array(limits.workspace.low), np.array(limits.workspace.high)
        self.reset()

    def reset(self) -> None:
        """A new episode: the arm was just put somewhere; nothing was commanded yet."""
        self.stamp: float | None = None  # last arm command (pose, joints or stop)
        self.velocity, self.rot_velocity = np.zeros(3), np.zeros(3)
        self.grip_stamp: float | None = None
        self.grip_width: float | None = None
        self.overspeed_at = -math.inf  # sim time a measured joint was last over its speed limit

    def check(self, name: str, value: float, measured: bool = False) -> None:
        result = self.result
        result.peak[name] = max(result.peak[name], value)
        if value > CHECKS[name][1]:
            result.violations[name] += 1
            if measured and self.sim.time - self.overspeed_at <= OVERSPEED_WINDOW_S:
                result.after_overspeed[name] += 1

    def _dt(self, stamp: float | None) -> float:
        """The time a move may take: since the last command, at most one control period;
        commands closer than 1 ms are judged 1 ms apart (as the limits are defined)."""
        return self.period if stamp is None else min(max(self.sim.time - stamp, 1e-3), self.period)

    def pose(self, target: np.ndarray) -> None:
        """A pose target reached the driver: its move from where the arm is now."""
        ee, ee_limits, dt = self.sim.ee_pose(), self.limits.ee, self._dt(self.stamp)
        move = np.asarray(target[:3], dtype=float) - ee.pos
        quat = tuple(np.asarray(target[3:], dtype=float) / np.linalg.norm(target[3:]))
        self.check("step", float(np.linalg.norm(move)) - ee_limits.max_step)
        self.check("speed", float(np.linalg.norm(move)) - ee_limits.max_speed * dt)
        self.check("acceleration", _hull_excess(move, self.velocity * dt, ee_limits.max_acceleration * dt * dt))
        angle = quat_angle(quat, tuple(ee.quat))
        self.check("rotation_step", angle - ee_limits.max_rot_step)
        self.check("rotation_speed", angle - ee_limits.max_rot_speed * dt)
        now_rpy = quat_to_rpy(*ee.quat)
        turn = _unwrap(quat_to_rpy(*quat), now_rpy) - np.array(now_rpy)
        self.check("rotation_acceleration",
                   _hull_excess(turn, self.rot_velocity * dt, ee_limits.max_rot_acceleration * dt * dt))
        self.velocity, self.rot_velocity, self.stamp = move / dt, turn / dt, self.sim.time

    def joints(self, q: np.ndarray) -> None:
        """Joint targets reached the driver: inside the limits less the margin (or no further
        out than the joint is now), and within what each joint reaches at its speed limit."""
        now, margin, dt = self.sim.arm_q(), self.limits.joints.margin, self._dt(self.stamp)
        lo, hi = np.minimum(self.lower + margin, now), np.maximum(self.upper - margin, now)
        self.check("joint_target", float(np.max(np.maximum(lo - q, q - hi))))
        self.check("joint_target_speed", float(np.max(np.abs(q - now) - self.max_dq * dt)))
        self.stop()

    def stop(self) -> None:
        """The arm was told to hold (or took joint targets): no end-effector velocity asked for."""
        self.velocity, self.rot_velocity, self.stamp = np.zeros(3), np.zeros(3), self.sim.time

    def gripper(self, width: float) -> None:
        """An opening reached the gripper driver: in range (or no further out than the last)
        and within max_speed of the last one (of the measured opening at first)."""
        g = self.limits.gripper
        anchor = self.sim.gripper_width() if self.grip_width is None else self.grip_width
        lo, hi = min(g.min_width, anchor), max(g.max_width, anchor)
        self.check("gripper_range", max(lo - width, width - hi))
        self.check("gripper_rate", abs(width - anchor) - g.max_speed * self._dt(self.grip_stamp))
        self.grip_width, self.grip_stamp = width, self.sim.time

    def sample(self) -> None:
        """The measured arm: end effector in the box and its orientation bounds, joints inside
        their limits, no gripper geom in the table; how fast the joints go, reported."""
        sim, o, result = self.sim, self.limits.orientation, self.result
        ratio = float(np.max(np.abs(sim.arm_dq()) / self.max_dq))
        if ratio > 1.0:
            result.overspeed_samples += 1
            self.overspeed_at = sim.time
        result.max_joint_speed_ratio = max(result.max_joint_speed_ratio, ratio)
        ee = sim.ee_pose()
        self.check("box", float(np.max(np.maximum(self.low - ee.pos, ee.pos - self.high))), measured=True)
        rpy = quat_to_rpy(*ee.quat)
        self.check("orientation", max(_angle_excess(rpy[i], o.low[i], o.high[i], i != 1) for i in range(3)),
                   measured=True)
        q = sim.arm_q()
        self.check("joint_position", float(np.max(np.maximum(self.lower - q, q - self.upper))), measured=True)
        self.check("table", table_penetration(self.env), measured=True)
        force = float(np.linalg.norm(sim.contact_wrench()[:3]))
        result.max_contact_force = max(result.max_contact_force, force)


class RecordingArm(Arm):
    """The arm driver, telling :class:`GroundTruth` of each command before passing it on."""

    def __init__(self, arm: Arm, truth: GroundTruth):
        self.arm, self.truth = arm, truth
        self.takes_joint_commands, self.senses_force = arm.takes_joint_commands, arm.senses_force

    @property
    def label(self) -> str:
        return self.arm.label

    def state(self) -> ArmState:
        return self.arm.state()

    def command(self, target: np.ndarray) -> None:
        self.truth.pose(np.asarray(target, dtype=float))
        self.arm.command(target)

    def command_joints(self, q: np.ndarray) -> None:
        self.truth.joints(np.asarray(q, dtype=float))
        self.arm.command_joints(q)

    def stop(self) -> None:
        self.truth.stop()
        self.arm.stop()

    @property
    def home_pose(self) -> np.ndarray:
        return self.arm.home_pose


class RecordingGripper(Gripper):
    """The gripper driver, telling :class:`GroundTruth` of each opening before passing it on."""

    def __init__(self, gripper: Gripper, truth: GroundTruth):
        self.gripper, self.truth, self.max_width = gripper, truth, gripper.max_width

    def state(self) -> GripperState:
        return self.gripper.state()

    def command(self, width: float) -> None:
        self.truth.gripper(float(width))
        self.gripper.command(width)


class Adversary:
    """Commands chosen to hit every filter of the chain, a scenario of a few to a few dozen
    commands at a time; each comes with the seconds until the next (None: a silence).
    ``joint_targets``: joint targets among them (else only poses, the gripper, holds)."""

    def __init__(self, env: RobotEnv, rng: np.random.Generator, joint_targets: bool = False):
        self.sim, self.rng, self.joint_targets = env.backend.sim, rng, joint_targets
        limits = env.safety.limits
        joints = list(limits.joints.limits.values())
        self.lower, self.upper = np.array([j.lower for j in joints]), np.array([j.upper for j in joints])
        self.low, self.high = np.array(limits.workspace.low), np.array(limits.workspace.high)
        self.scenarios = (self.jump, self.sweep, self.rotate, self.table, self.press, self.nonfinite, self.gripper,
                          self.pause, *((self.joints,) * 2 * joint_targets))

    def commands(self) -> Iterator[tuple[Command | None, float]]:
        while True:
            scenario = self.scenarios[int(self.rng.integers(len(self.scenarios)))]
            yield from scenario(int(self.rng.integers(3, 25)))

    # ------------------------------------------------------------------ helpers
    def interval(self) -> float:
        return float(self.rng.choice(INTERVALS))

    def grip(self) -> float | None:
        return None if self.rng.random() < 0.6 else float(self.rng.uniform(-0.05, 0.15))

    def rpy(self) -> np.ndarray:
        return np.array(quat_to_rpy(*self.sim.ee_pose().quat))

    def orientation(self) -> np.ndarray:
        """Gripper down give or take a lot, any orientation at all, or the current one."""
        kind = self.rng.random()
        if kind < 0.4:
            return np.array(rpy_to_quat(math.pi + self.rng.uniform(-0.8, 0.8), self.rng.uniform(-0.6, 0.6),
                                        self.rng.uniform(-2.8, 2.8)))
        if kind < 0.6:
            q = self.rng.normal(size=4)
            return q / np.linalg.norm(q)
        return self.sim.ee_pose().quat

    # ------------------------------------------------------------------ scenarios
    def jump(self, n: int) -> Iterator[tuple[Command, float]]:
        """A far target, in or out of the box (its corners with the most tilt and yaw among
        them), held: the step and speed limits cut it into moves."""
        if self.rng.random() < 0.3:
            corner = np.where(self.rng.random(3) < 0.5, self.low, self.high)
            r, p, y = self.rng.choice([-1.0, 1.0], 3) * [0.3, 0.3, 1.7]
            target = np.concatenate([corner, rpy_to_quat(math.pi + r, p, y)])
        else:
            target = np.concatenate([self.rng.uniform([0.0, -0.7, -0.3], [1.0, 0.7, 0.7]), self.orientation()])
        for _ in range(n):
            yield Command.ee(target, self.grip()), self.interval()

    def sweep(self, n: int) -> Iterator[tuple[Command, float]]:
        """Back and forth along a line (and about the axes) at full tilt, reversing every
        command or few: the acceleration limits."""
        direction = self.rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        reach, turn = self.rng.uniform(0.05, 0.3), self.rng.uniform(-1.0, 1.0, 3) * (self.rng.random() < 0.5)
        every, sign = int(self.rng.integers(1, 4)), 1.0
        for i in range(n):
            if i % every == 0:
                sign = -sign
            pos = self.sim.ee_pose().pos + sign * reach * direction
            yield Command.ee(np.concatenate([pos, rpy_to_quat(*(self.rpy() + sign * turn))])), self.interval()

    def rotate(self, n: int) -> Iterator[tuple[Command, float]]:
        """Big turns where the arm is, back and forth, or towards a far orientation (as far
        as gripper up): the rotation limits and the orientation bounds."""
        far = self.rng.random() < 0.4
        turn, fixed = self.rng.uniform(-3.0, 3.0, 3), self.orientation()
        for i in range(n):
            rpy = self.rpy() + (-1) ** i * turn
            quat = fixed if far else np.array(rpy_to_quat(*rpy))
            yield Command.ee(np.concatenate([self.sim.ee_pose().pos, quat])), self.interval()

    def table(self, n: int) -> Iterator[tuple[Command, float]]:
        """Down into the table (and through it), tilted as far as allowed, fingers shut or not."""
        xy = self.rng.uniform(self.low[:2] - 0.1, self.high[:2] + 0.1)
        tilt = rpy_to_quat(math.pi + self.rng.uniform(-0.3, 0.3), self.rng.uniform(-0.3, 0.3), self.rng.uniform(-2, 2))
        target = np.concatenate([xy, [self.rng.uniform(-0.3, 0.02)], tilt])
        for _ in range(n):
            yield Command.ee(target, self.grip()), self.interval()

    def press(self, n: int) -> Iterator[tuple[Command, float]]:
        """Fingers shut, onto the cube and down (or sideways through it): the contact limit."""
        cube, quat = self.sim.cube_pos(), self.sim.ee_pose().quat
        side = self.rng.random() < 0.3
        for i in range(n):
            if i < n // 3:
                pos = cube + [0.0, 0.0, 0.08]
            else:
                pos = cube + ([0.3 * (-1) ** (i // 8), 0.0, 0.0] if side else [0.0, 0.0, -0.2])
            yield Command.ee(np.concatenate([pos, quat]), 0.0), self.interval()

    def joints(self, n: int) -> Iterator[tuple[Command, float]]:
        """Joint targets past a joint's limit, far from the current joints, or anywhere."""
        q, kind = self.sim.arm_q(), self.rng.random()
        if kind < 0.5:
            i = int(self.rng.integers(len(q)))
            q[i] = self.upper[i] + 0.5 if self.rng.random() < 0.5 else self.lower[i] - 0.5
        elif kind < 0.8:
            q = q + self.rng.normal(0.0, 0.8, len(q))
        else:
            q = self.rng.uniform(self.lower - 0.3, self.upper + 0.3)
        for _ in range(n):
            yield Command.joint(q, self.grip()), self.interval()

    def nonfinite(self, n: int) -> Iterator[tuple[Command, float]]:
        """NaN, inf and huge numbers in any part, a zero quaternion, a pose of the wrong length."""
        bad = (math.nan, math.inf, -math.inf, 1e300)
        for _ in range(n):
            pose = self.sim.ee_pose().as_array()
            kind = int(self.rng.integers(5))
            if kind == 0:
                pose[int(self.rng.integers(7))] = bad[int(self.rng.integers(4))]
                command = Command.ee(pose)
            elif kind == 1:
                command = Command.ee(np.concatenate([pose[:3], np.zeros(4)]))
            elif kind == 2:
                command = Command.ee(pose[:6])
            elif kind == 3 and self.joint_targets:
                command = Command.joint(np.full(len(self.lower), math.nan))
            elif kind == 3:
                command = Command.ee(pose, gripper=math.inf)
            else:
                command = Command.ee(pose, gripper=math.nan)
            yield command, self.interval()

    def gripper(self, n: int) -> Iterator[tuple[Command, float]]:
        """Gripper commands alone: slammed shut and open, or out of range."""
        for i in range(n):
            width = (0.0, 0.08)[i % 2] if self.rng.random() < 0.5 else float(self.rng.uniform(-0.05, 0.2))
            yield Command(gripper=width), self.interval()

    def pause(self, n: int) -> Iterator[tuple[None, float]]:
        """Nothing sent for longer than the watchdog's timeout: the arm halts."""
        yield None, float(self.rng.uniform(0.25, 0.6))


def run_arm_audit(env: RobotEnv, commands: int, seed: int = 0, joint_targets: bool = False,
                  reset_every: int = 400) -> ArmAuditResult:
    """Send ``commands`` of the :class:`Adversary` straight to ``env``'s SafeArm (a new episode,
    the arm put back near home, every ``reset_every``), checking everything against the
    ground truth. Wraps the SafeArm's drivers in recorders for good: use a fresh env.

    ``joint_targets``: joint targets too, past the limits and anywhere (the end-effector
    filters do not judge them, see :class:`~robot_rl.safety.SafeArm`: the end effector
    checks then say where they took the arm, not what the chain lets through)."""
    result = ArmAuditResult()
    truth = GroundTruth(env, result)
    safe: SafeArm = env.safety
    safe.arm = RecordingArm(safe.arm, truth)
    safe._gripper = RecordingGripper(safe._gripper, truth)  # the one the SafeArm sends openings to
    stream = Adversary(env, np.random.default_rng(seed), joint_targets).commands()
    episode = 0
    env.reset(seed=seed)
    while result.commands < commands:
        command, interval = next(stream)
        if command is not None:
            safe.submit(command)
            result.commands += 1
            _note(result, safe.take_events())
        _advance(env, truth, interval)
        if command is not None and result.commands % reset_every == 0:
            episode += 1
            env.reset(seed=seed + episode)
            truth.reset()
    return result


def _advance(env: RobotEnv, truth: GroundTruth, seconds: float) -> None:
    """Let ``seconds`` of sim time pass, checking the measured arm every :data:`SAMPLE_S`."""
    while seconds > 1e-9:
        chunk = min(SAMPLE_S, seconds)
        env.backend.advance(chunk)
        truth.sample()
        truth.result.sim_seconds += chunk
        seconds -= chunk
    _note(truth.result, env.safety.take_events())


def _note(result: ArmAuditResult, events: list) -> None:
    result.events.update(e.reason for e in events)
    result.acted.update({e.filter for e in events})

"""The safety filters that judge every kind of command, pose or joint targets or gripper: a
finite, well-formed command from a finite state; no contact force over its limit; joints
inside their limits and below their speed limits; the gripper within its range and rate.
The interface is :class:`~robot_rl.safety.filters.SafetyFilter`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from robot_rl.safety.command import HOLD, Command
from robot_rl.safety.filters import EPS, NO_EVENTS, SafetyFilter, move_time, norm3

QUAT_TOLERANCE = 1e-6  # |‖q‖ − 1| above this is renormalised, with an event


class FiniteCheck(SafetyFilter):
    """NaN, inf or a malformed command anywhere (or a non-finite state) → hold the current pose.

    Also renormalises a quaternion that is not unit length (an event, as every change is).
    """

    name = "finite"

    def filter(self, command, state, now):
        if command.hold:
            return command, NO_EVENTS
        if not state.finite:
            return HOLD, (self._event("non_finite_state", now),)
        pose, joints, grip = command.pose, command.joints, command.gripper
        bad = ((pose is not None and (len(pose) != 7 or not all(map(math.isfinite, pose))))
               or (joints is not None and (len(joints) != len(state.q) or not all(map(math.isfinite, joints))))
               or (grip is not None and not math.isfinite(grip)))
        if bad:
            return HOLD, (self._event("non_finite_command", now, pose=pose, joints=joints, gripper=grip),)
        if pose is None:
            return command, NO_EVENTS
        w, x, y, z = pose[3:]
        scale = max(abs(w), abs(x), abs(y), abs(z))
        if scale == 0.0:
            return HOLD, (self._event("zero_quaternion", now, pose=pose),)
        norm = scale * math.sqrt((w / scale) ** 2 + (x / scale) ** 2 + (y / scale) ** 2 + (z / scale) ** 2)
        if abs(norm - 1.0) <= QUAT_TOLERANCE:
            return command, NO_EVENTS
        pose = (*pose[:3], w / norm, x / norm, y / norm, z / norm)
        return (Command(pose, joints, grip), (self._event("quaternion_not_unit", now, norm=norm),))


class ContactBackoff(SafetyFilter):
    """A contact force or torque above its threshold → stop, and back off along the force
    (the force the world exerts on the gripper points away from what it touches)."""

    name = "contact"

    def __init__(self, max_force: float, max_torque: float, backoff: float):
        self.max_force, self.max_torque, self.backoff = max_force, max_torque, backoff

    def filter(self, command, state, now):
        if command.hold or (command.pose is None and command.joints is None):
            return command, NO_EVENTS
        force, torque = norm3(*state.force), norm3(*state.torque)
        if force <= self.max_force and torque <= self.max_torque:
            return command, NO_EVENTS
        x, y, z = state.pos
        if force > self.max_force:
            k = self.backoff / force
            x, y, z = x + k * state.force[0], y + k * state.force[1], z + k * state.force[2]
        safe = Command((x, y, z, *state.quat), None, command.gripper)
        return safe, (self._event("contact_limit", now, force=force, torque=torque, target=(x, y, z)),)


class JointLimits(SafetyFilter):
    """Joint position limits with a margin, and joint velocity limits.

    From the joint state: a joint faster than its limit, or inside its margin band and
    moving further towards the limit, stops the arm. Joint targets (for arms that take
    them) are clipped into [lower + margin, upper − margin] and to what the joint can
    reach at its velocity limit before the next command.
    """

    name = "joints"
    creep = 0.05  # rad/s; slower than this towards a limit inside the margin is not "moving towards"

    def __init__(self, lower: Sequence[float], upper: Sequence[float], max_velocity: Sequence[float],
                 margin: float, period: float):
        self.low = tuple(lo + margin for lo in lower)
        self.high = tuple(hi - margin for hi in upper)
        self.max_velocity, self.period = tuple(max_velocity), period
        self.stamp: float | None = None

    def filter(self, command, state, now):
        if command.hold or (command.pose is None and command.joints is None):
            return command, NO_EVENTS
        q, dq = state.q, state.dq
        for i in range(len(q)):
            if abs(dq[i]) > self.max_velocity[i]:
                return HOLD, (self._event("joint_overspeed", now, joint=i, velocity=dq[i],
                                          limit=self.max_velocity[i]),)
            if (q[i] < self.low[i] and dq[i] < -self.creep) or (q[i] > self.high[i] and dq[i] > self.creep):
                return HOLD, (self._event("joint_limit", now, joint=i, position=q[i], velocity=dq[i]),)
        if command.joints is None:
            return command, NO_EVENTS
        reach = move_time(self.stamp, now, self.period)
        out, changed = list(command.joints), False
        for i, target in enumerate(out):
            qi, step = q[i], self.max_velocity[i] * reach
            lo = max(min(self.low[i], qi), qi - step)
            hi = min(max(self.high[i], qi), qi + step)
            if target < lo - EPS or target > hi + EPS:
                out[i], changed = min(max(target, lo), hi), True
        if not changed:
            return command, NO_EVENTS
        safe = Command(command.pose, tuple(out), command.gripper)
        return safe, (self._event("joint_target_limit", now, requested=command.joints, target=tuple(out)),)

    def commit(self, command, state, now):
        if command.hold or command.pose is not None or command.joints is not None:
            self.stamp = now

    def reset(self):
        self.stamp = None


class GripperRateLimit(SafetyFilter):
    """The commanded opening stays within [min_width, max_width] and changes by at most
    ``max_speed`` m/s from the last command (or from the measured opening at first)."""

    name = "gripper"

    def __init__(self, min_width: float, max_width: float, max_speed: float, period: float):
        self.min_width, self.max_width, self.max_speed, self.period = min_width, max_width, max_speed, period
        self.reset()

    def reset(self):
        self.stamp: float | None = None
        self.width: float | None = None

    def filter(self, command, state, now):
        target = command.gripper
        if command.hold or target is None:
            return command, NO_EVENTS
        anchor = self.width if self.width is not None else state.width
        lo, hi = self.min_width, self.max_width
        if anchor is not None:
            step = self.max_speed * move_time(self.stamp, now, self.period)
            lo, hi = max(min(lo, anchor), anchor - step), min(max(hi, anchor), anchor + step)
        if lo - EPS <= target <= hi + EPS:
            return command, NO_EVENTS
        safe = min(max(target, lo), hi)
        event = self._event("gripper_rate_limit", now, requested=target, target=safe)
        return Command(command.pose, command.joints, safe, command.hold), (event,)

    def commit(self, command, state, now):
        if command.gripper is not None and not command.hold:
            self.stamp, self.width = now, command.gripper

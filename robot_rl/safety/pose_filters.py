"""The safety filters that bound end-effector pose targets: the workspace box (position and
orientation), and how far, how fast and how abruptly one command may move the end effector.
Joint targets and the gripper pass them unjudged (:mod:`robot_rl.safety.command_filters`
judges those); the interface is :class:`~robot_rl.safety.filters.SafetyFilter`.

How the pose filters compose: every limit is a convex set of targets that contains the
current pose (a box is widened to include the arm's own position when the arm is outside
it, so a command may lead back but never further out). The workspace filter clips into
its box; every later pose filter only shrinks the move along the straight line from the
current pose towards the target. A point on that segment stays inside every earlier set,
so the output of the default chain satisfies all limits at once, and is a fixed point.
Orientations are handled the same way in roll/pitch/yaw coordinates unwrapped around the
current orientation (which is what makes bounds across ±π work). A hold (stop where you
are) is always safe and is never changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from robot_rl.safety.command import Command, RobotState, SafetyEvent
from robot_rl.safety.filters import EPS, NO_EVENTS, SafetyFilter, move_time, norm3
from robot_rl.safety.rotations import TAU, quat_to_rpy, rpy_to_quat


def chart(state: RobotState, quat: tuple[float, ...]) -> tuple[float, float, float]:
    """Roll, pitch, yaw of ``quat`` unwrapped to within π of the current orientation's.

    Remembered on ``state`` for the last quaternion asked about: consecutive filters ask
    about the same one, and a filter that builds a new orientation leaves its angles there.
    """
    cache = state.chart_cache
    if cache is not None and cache[0] == quat:
        return cache[1]
    r, p, y = quat_to_rpy(*quat)
    ar, _, ay = state.rpy
    angles = (ar + (r - ar + math.pi) % TAU - math.pi, p, ay + (y - ay + math.pi) % TAU - math.pi)
    state.chart_cache = (quat, angles)
    return angles


def _with_pos(command: Command, x: float, y: float, z: float) -> Command:
    return Command((x, y, z, *command.pose[3:]), command.joints, command.gripper)


def _with_pose(command: Command, state: RobotState, pos: Sequence[float], rpy: tuple[float, float, float]) -> Command:
    quat = rpy_to_quat(*rpy)
    state.chart_cache = (quat, rpy)
    return Command((pos[0], pos[1], pos[2], *quat), command.joints, command.gripper)


def _hull_scale(d: Sequence[float], center: Sequence[float], radius: float) -> float:
    """Largest t in [0, 1] with t·d in the convex hull of the ball (center, radius) and the origin."""
    length = norm3(*d)
    if length <= EPS:
        return 1.0
    proj = (d[0] * center[0] + d[1] * center[1] + d[2] * center[2]) / length
    disc = proj * proj - (center[0] ** 2 + center[1] ** 2 + center[2] ** 2 - radius * radius)
    if disc < 0.0:
        return 0.0
    reach = proj + math.sqrt(disc)  # far side of the ball along d: everything before it is in the hull
    if reach >= length - EPS:
        return 1.0
    return max(reach, 0.0) / length


class Workspace(SafetyFilter):
    """The end-effector box on position and on roll/pitch/yaw.

    Roll and yaw bounds may cross ±π (gripper-down is roll = π: bounds [2.9, 3.4] mean
    "within 0.25 rad of pointing down"). Bounds spanning 2π or more leave that angle free.

    An arm a little outside the box (tracking error, at most ``tolerance`` m or
    ``rot_tolerance`` rad) may stay there or come back but go no further out: the box is
    widened to include it. An arm further out is sent back: the target becomes the nearest
    point (orientation) inside the box, whatever was asked for, so a box it overshot can
    never ratchet outwards.
    """

    name = "workspace"

    def __init__(self, low: Sequence[float], high: Sequence[float], rot_low: Sequence[float],
                 rot_high: Sequence[float], tolerance: float = 0.001, rot_tolerance: float = 0.02):
        self.low, self.high = tuple(low), tuple(high)
        self.rot_low, self.rot_high = tuple(rot_low), tuple(rot_high)
        self.tolerance, self.rot_tolerance = tolerance, rot_tolerance

    def angle_bounds(self, axis: int, anchor: float) -> tuple[float, float, float]:
        """(low, high) of angle ``axis`` in the chart around ``anchor``, and how far outside
        them ``anchor`` is (0 inside)."""
        lo, hi = self.rot_low[axis], self.rot_high[axis]
        if axis == 1:  # pitch does not wrap
            return lo, hi, max(lo - anchor, anchor - hi, 0.0)
        width = hi - lo
        if width >= TAU:
            return -math.inf, math.inf, 0.0
        lo = anchor - (anchor - lo) % TAU  # the copy of [lo, hi] whose start is at or below anchor
        hi = lo + width
        if anchor <= hi:
            return lo, hi, 0.0
        if anchor - hi <= lo + TAU - anchor:  # nearer the end of this copy than the start of the next
            return lo, hi, anchor - hi
        return lo + TAU, hi + TAU, lo + TAU - anchor

    def filter(self, command, state, now):
        if command.hold or command.pose is None:
            return command, NO_EVENTS
        pose, pos, low, high, tol = command.pose, state.pos, self.low, self.high, self.tolerance
        events = NO_EVENTS
        x, y, z = pose[0], pose[1], pose[2]
        out = [x, y, z]
        outside = max(low[0] - pos[0], pos[0] - high[0], low[1] - pos[1], pos[1] - high[1], low[2] - pos[2],
                      pos[2] - high[2])
        if outside > tol:  # too far out: back to the nearest point of the box
            out = [min(max(pos[i], low[i]), high[i]) for i in range(3)]
        else:
            for i in range(3):
                lo, hi = min(low[i], pos[i]), max(high[i], pos[i])
                if out[i] < lo - EPS or out[i] > hi + EPS:
                    out[i] = min(max(out[i], lo), hi)
        if out[0] != x or out[1] != y or out[2] != z:
            reason = "outside_workspace" if outside > tol else "position_limit"
            events = (self._event(reason, now, requested=(x, y, z), target=tuple(out)),)
            command = _with_pos(command, *out)
        rpy = chart(state, pose[3:])
        ar, ap, ay = state.rpy
        rlo, rhi, rout = self.angle_bounds(0, ar)
        plo, phi, pout = self.angle_bounds(1, ap)
        ylo, yhi, yout = self.angle_bounds(2, ay)
        r, p, y = rpy
        if rout > self.rot_tolerance or pout > self.rot_tolerance or yout > self.rot_tolerance:
            reason = "outside_orientation"  # too far out: back to the nearest orientation inside the bounds
            r, p, y = min(max(ar, rlo), rhi), min(max(ap, plo), phi), min(max(ay, ylo), yhi)
        else:
            reason = "orientation_limit"
            if rout > 0.0:
                rlo, rhi = min(rlo, ar), max(rhi, ar)
            if pout > 0.0:
                plo, phi = min(plo, ap), max(phi, ap)
            if yout > 0.0:
                ylo, yhi = min(ylo, ay), max(yhi, ay)
            if not rlo - EPS <= r <= rhi + EPS:
                r = min(max(r, rlo), rhi)
            if not plo - EPS <= p <= phi + EPS:
                p = min(max(p, plo), phi)
            if not ylo - EPS <= y <= yhi + EPS:
                y = min(max(y, ylo), yhi)
        if r != rpy[0] or p != rpy[1] or y != rpy[2]:
            events += (self._event(reason, now, requested=rpy, target=(r, p, y)),)
            command = _with_pose(command, state, command.pose, (r, p, y))
        return command, events


class StepLimit(SafetyFilter):
    """How far one command may move the end effector from where it is now: a distance
    (m), and a rotation (rad, as the sum of roll, pitch and yaw changes, which bounds the
    rotation angle)."""

    name = "step"

    def __init__(self, max_step: float, max_rot_step: float):
        self.max_step, self.max_rot_step = max_step, max_rot_step

    def _radii(self, now: float) -> tuple[float, float]:
        return self.max_step, self.max_rot_step

    def filter(self, command, state, now):
        if command.hold or command.pose is None:
            return command, NO_EVENTS
        max_step, max_rot = self._radii(now)
        return _limit_move(self, command, state, now, max_step, max_rot)


class SpeedLimit(StepLimit):
    """End-effector speed: the move a command asks for, over the time until the next
    command (the time since the last one, at most one control period)."""

    name = "speed"

    def __init__(self, max_speed: float, max_rot_speed: float, period: float):
        super().__init__(max_speed, max_rot_speed)
        self.period = period
        self.stamp: float | None = None

    def _radii(self, now: float) -> tuple[float, float]:
        dt = move_time(self.stamp, now, self.period)
        return self.max_step * dt, self.max_rot_step * dt

    def commit(self, command, state, now):
        if command.hold or command.pose is not None or command.joints is not None:
            self.stamp = now

    def reset(self):
        self.stamp = None


def _limit_move(f: SafetyFilter, command: Command, state: RobotState, now: float, max_step: float,
                max_rot: float) -> tuple[Command, tuple[SafetyEvent, ...]]:
    """Shrink the move towards the current pose: translation within ``max_step`` (Euclidean),
    rotation within ``max_rot`` (sum of |Δroll|, |Δpitch|, |Δyaw|)."""
    pose, pos = command.pose, state.pos
    px, py, pz = pos
    dx, dy, dz = pose[0] - px, pose[1] - py, pose[2] - pz
    dist = math.sqrt(dx * dx + dy * dy + dz * dz)
    events = NO_EVENTS
    if dist > max_step + EPS:
        k = max_step / dist
        command = _with_pos(command, px + k * dx, py + k * dy, pz + k * dz)
        events = (f._event("translation_limit", now, requested=dist, limit=max_step),)
    r, p, y = chart(state, pose[3:])
    ar, ap, ay = state.rpy
    dr, dp, dy = r - ar, p - ap, y - ay
    turn = abs(dr) + abs(dp) + abs(dy)
    if turn > max_rot + EPS:
        k = max_rot / turn
        command = _with_pose(command, state, command.pose, (ar + k * dr, ap + k * dp, ay + k * dy))
        events += (f._event("rotation_limit", now, requested=turn, limit=max_rot),)
    return command, events


class AccelerationLimit(SafetyFilter):
    """End-effector acceleration: the velocity a command asks for (its move over the time
    to the next command) may differ from the last command's by at most ``max_acceleration
    · dt``; slowing down along the asked-for direction, down to a stop, is always allowed.
    Rotation likewise, on the rates of roll, pitch and yaw."""

    name = "acceleration"

    def __init__(self, max_acceleration: float, max_rot_acceleration: float, period: float):
        self.max_acceleration, self.max_rot_acceleration, self.period = max_acceleration, max_rot_acceleration, period
        self.reset()

    def reset(self):
        self.stamp: float | None = None
        self.velocity = (0.0, 0.0, 0.0)
        self.rot_velocity = (0.0, 0.0, 0.0)

    def filter(self, command, state, now):
        if command.hold or command.pose is None:
            return command, NO_EVENTS
        dt = move_time(self.stamp, now, self.period)
        pose, (px, py, pz), events = command.pose, state.pos, NO_EVENTS
        d = (pose[0] - px, pose[1] - py, pose[2] - pz)
        vx, vy, vz = self.velocity
        t = _hull_scale(d, (vx * dt, vy * dt, vz * dt), self.max_acceleration * dt * dt)
        if t < 1.0:
            command = _with_pos(command, px + t * d[0], py + t * d[1], pz + t * d[2])
            events = (self._event("acceleration_limit", now, requested=norm3(*d) / dt, scale=t),)
        r, p, y = chart(state, pose[3:])
        ar, ap, ay = state.rpy
        d = (r - ar, p - ap, y - ay)
        vx, vy, vz = self.rot_velocity
        t = _hull_scale(d, (vx * dt, vy * dt, vz * dt), self.max_rot_acceleration * dt * dt)
        if t < 1.0:
            command = _with_pose(command, state, command.pose, (ar + t * d[0], ap + t * d[1], ay + t * d[2]))
            events += (self._event("rotation_acceleration_limit", now, requested=norm3(*d) / dt, scale=t),)
        return command, events

    def commit(self, command, state, now):
        if command.pose is None:
            if command.hold or command.joints is not None:
                self.stamp, self.velocity, self.rot_velocity = now, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
            return
        dt = move_time(self.stamp, now, self.period)
        pose, pos, anchor = command.pose, state.pos, state.rpy
        self.velocity = ((pose[0] - pos[0]) / dt, (pose[1] - pos[1]) / dt, (pose[2] - pos[2]) / dt)
        r, p, y = chart(state, pose[3:])
        self.rot_velocity = ((r - anchor[0]) / dt, (p - anchor[1]) / dt, (y - anchor[2]) / dt)
        self.stamp = now

"""Safety filters: small, pure, composable checks between every command and the arm.

Every filter has one interface, ``filter(command, state, now) -> (safe_command, events)``:
it returns the command unchanged when it is inside the filter's limits, or the nearest
safe command and one :class:`SafetyEvent` per intervention. ``filter`` never changes the
filter; filters that need history (velocity, acceleration, gripper rate) keep it in an
explicit memory that only :meth:`SafetyFilter.commit` (told what was finally sent) updates
and :meth:`SafetyFilter.reset` clears. So filtering is a pure function of (command, state,
now, memory), and a filter's output filtered again comes back unchanged.

How the pose filters compose: every limit is a convex set of targets that contains the
current pose (a box is widened to include the arm's own position when the arm is outside
it, so a command may lead back but never further out). The workspace filter clips into
its box; every later pose filter only shrinks the move along the straight line from the
current pose towards the target. A point on that segment stays inside every earlier set,
so the output of the default chain satisfies all limits at once, and is a fixed point.
Orientations are handled the same way in roll/pitch/yaw coordinates unwrapped around the
current orientation (which is what makes bounds across ±π work). A hold (stop where you
are) is always safe and is never changed.

Floats and ``math`` rather than numpy: these are 3- and 7-vectors, where numpy's per-call
overhead dominates; the whole default chain runs in tens of microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from robot_rl.safety.command import HOLD, Command, RobotState, SafetyEvent
from robot_rl.safety.rotations import TAU, quat_to_rpy, rpy_to_quat

NO_EVENTS: tuple[SafetyEvent, ...] = ()
EPS = 1e-9  # tolerance of every "is it inside?" check, so round-off never triggers a second clip
DT_MIN = 1e-3  # s; commands closer together than this are judged as if this far apart
QUAT_TOLERANCE = 1e-6  # |‖q‖ − 1| above this is renormalised, with an event


class SafetyFilter:
    """Base of all filters. Subclasses set ``name`` and implement :meth:`filter`."""

    name = "filter"

    def filter(self, command: Command, state: RobotState, now: float) -> tuple[Command, tuple[SafetyEvent, ...]]:
        raise NotImplementedError

    def commit(self, command: Command, state: RobotState, now: float) -> None:
        """Remember that ``command`` (the chain's final output) was sent at ``now``."""

    def reset(self) -> None:
        """Forget all history (a new episode, or after the arm was repositioned)."""

    def _event(self, reason: str, now: float, **values: object) -> SafetyEvent:
        return SafetyEvent(self.name, reason, values, now)



# ---------------------------------------------------------------------------- helpers
def _dt(stamp: float | None, now: float, period: float) -> float:
    """Seconds the next move may take: since the last command, at most one control period."""
    if stamp is None:
        return period
    return min(max(now - stamp, DT_MIN), period)


def _norm(a: float, b: float, c: float) -> float:
    return math.sqrt(a * a + b * b + c * c)


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
    length = _norm(*d)
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


# ---------------------------------------------------------------------------- filters
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
        force, torque = _norm(*state.force), _norm(*state.torque)
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
        reach = _dt(self.stamp, now, self.period)
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
        dt = _dt(self.stamp, now, self.period)
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
        dt = _dt(self.stamp, now, self.period)
        pose, (px, py, pz), events = command.pose, state.pos, NO_EVENTS
        d = (pose[0] - px, pose[1] - py, pose[2] - pz)
        vx, vy, vz = self.velocity
        t = _hull_scale(d, (vx * dt, vy * dt, vz * dt), self.max_acceleration * dt * dt)
        if t < 1.0:
            command = _with_pos(command, px + t * d[0], py + t * d[1], pz + t * d[2])
            events = (self._event("acceleration_limit", now, requested=_norm(*d) / dt, scale=t),)
        r, p, y = chart(state, pose[3:])
        ar, ap, ay = state.rpy
        d = (r - ar, p - ap, y - ay)
        vx, vy, vz = self.rot_velocity
        t = _hull_scale(d, (vx * dt, vy * dt, vz * dt), self.max_rot_acceleration * dt * dt)
        if t < 1.0:
            command = _with_pose(command, state, command.pose, (ar + t * d[0], ap + t * d[1], ay + t * d[2]))
            events += (self._event("rotation_acceleration_limit", now, requested=_norm(*d) / dt, scale=t),)
        return command, events

    def commit(self, command, state, now):
        if command.pose is None:
            if command.hold or command.joints is not None:
                self.stamp, self.velocity, self.rot_velocity = now, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
            return
        dt = _dt(self.stamp, now, self.period)
        pose, pos, anchor = command.pose, state.pos, state.rpy
        self.velocity = ((pose[0] - pos[0]) / dt, (pose[1] - pos[1]) / dt, (pose[2] - pos[2]) / dt)
        r, p, y = chart(state, pose[3:])
        self.rot_velocity = ((r - anchor[0]) / dt, (p - anchor[1]) / dt, (y - anchor[2]) / dt)
        self.stamp = now


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
            step = self.max_speed * _dt(self.stamp, now, self.period)
            lo, hi = max(min(lo, anchor), anchor - step), min(max(hi, anchor), anchor + step)
        if lo - EPS <= target <= hi + EPS:
            return command, NO_EVENTS
        safe = min(max(target, lo), hi)
        event = self._event("gripper_rate_limit", now, requested=target, target=safe)
        return Command(command.pose, command.joints, safe, command.hold), (event,)

    def commit(self, command, state, now):
        if command.gripper is not None and not command.hold:
            self.stamp, self.width = now, command.gripper

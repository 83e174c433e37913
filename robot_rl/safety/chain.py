"""The safety chain: filters applied in order, every intervention counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from robot_rl.safety.command import Command, RobotState, SafetyEvent
from robot_rl.safety.command_filters import ContactBackoff, FiniteCheck, GripperRateLimit, JointLimits
from robot_rl.safety.filters import SafetyFilter
from robot_rl.safety.limits import SafetyLimits
from robot_rl.safety.pose_filters import AccelerationLimit, SpeedLimit, StepLimit, Workspace
from robot_rl.safety.rotations import TAU


class SafetyChain(SafetyFilter):
    """Filters in order; a chain is itself a filter, so chains nest.

    :meth:`filter` is pure (it changes nothing, so it can be asked "what would you send?");
    :meth:`apply` is what a robot calls: filter, then tell every filter what was sent
    (:meth:`commit`) and count the events by reason.
    """

    name = "chain"

    def __init__(self, filters: Sequence[SafetyFilter]):
        self.filters = tuple(filters)
        self.counts: Counter[str] = Counter()

    def filter(self, command: Command, state: RobotState, now: float) -> tuple[Command, tuple[SafetyEvent, ...]]:
        events: tuple[SafetyEvent, ...] = ()
        for f in self.filters:
            command, new = f.filter(command, state, now)
            if new:
                events += new
        return command, events

    def commit(self, command: Command, state: RobotState, now: float) -> None:
        for f in self.filters:
            f.commit(command, state, now)

    def apply(self, command: Command, state: RobotState, now: float) -> tuple[Command, tuple[SafetyEvent, ...]]:
        """Filter ``command``, remember the result as sent at ``now``, count the events."""
        safe, events = self.filter(command, state, now)
        self.commit(safe, state, now)
        for e in events:
            self.counts[e.reason] += 1
        return safe, events

    def reset(self) -> None:
        """Forget the filters' history (counts are kept: they are the run's record)."""
        for f in self.filters:
            f.reset()

    def find(self, kind: type[SafetyFilter]) -> list[SafetyFilter]:
        """Every filter of type ``kind`` in the chain, nested chains included."""
        found: list[SafetyFilter] = []
        for f in self.filters:
            if isinstance(f, kind):
                found.append(f)
            if isinstance(f, SafetyChain):
                found += f.find(kind)
        return found


def default_chain(limits: SafetyLimits, period: float) -> SafetyChain:
    """The chain for ``limits`` at a control period of ``period`` seconds.

    The order matters: the finite check first (nothing else can judge NaN), contact and
    joint checks next (they may turn the command into a stop), then the workspace box (less
    ``tracking_margin``) and orientation bounds (less ``rot_tracking_margin``),
    and last the limits that only shorten the move towards the current pose (see
    :mod:`robot_rl.safety.pose_filters` for why that order makes the output satisfy all of them).
    Without contact limits (``contact: none``) there is no contact filter; :class:`SafeArm`
    refuses a contact filter on an arm that cannot sense force.
    """
    if period <= 0:
        raise ValueError(f"the control period must be > 0 s, got {period}")
    ee, joints, c, g = limits.ee, limits.joints, limits.contact, limits.gripper
    joint_list = list(joints.limits.values())
    o, rm = limits.orientation, limits.rot_tracking_margin
    free = [hi - lo >= TAU for lo, hi in zip(o.low, o.high, strict=True)]  # no bound: nothing to keep clear of
    contact = [] if c is None else [ContactBackoff(c.max_force, c.max_torque, c.backoff)]  # None: 'contact: none'
    return SafetyChain([
        FiniteCheck(),
        *contact,
        JointLimits([j.lower for j in joint_list], [j.upper for j in joint_list],
                    [j.max_velocity for j in joint_list], joints.margin, period),
        Workspace([v + limits.tracking_margin for v in limits.workspace.low],
                  [v - limits.tracking_margin for v in limits.workspace.high],
                  [lo if f else lo + rm for lo, f in zip(o.low, free, strict=True)],
                  [hi if f else hi - rm for hi, f in zip(o.high, free, strict=True)]),
        StepLimit(ee.max_step, ee.max_rot_step),
        SpeedLimit(ee.max_speed, ee.max_rot_speed, period),
        AccelerationLimit(ee.max_acceleration, ee.max_rot_acceleration, period),
        GripperRateLimit(g.min_width, g.max_width, g.max_speed, period),
    ])

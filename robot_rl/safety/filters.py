"""Safety filters: small, pure, composable checks between every command and the arm.

Every filter has one interface, ``filter(command, state, now) -> (safe_command, events)``:
it returns the command unchanged when it is inside the filter's limits, or the nearest
safe command and one :class:`SafetyEvent` per intervention. ``filter`` never changes the
filter; filters that need history (velocity, acceleration, gripper rate) keep it in an
explicit memory that only :meth:`SafetyFilter.commit` (told what was finally sent) updates
and :meth:`SafetyFilter.reset` clears. So filtering is a pure function of (command, state,
now, memory), and a filter's output filtered again comes back unchanged.

The filters: :mod:`robot_rl.safety.command_filters` judge every kind of command (poses,
joint targets, the gripper); :mod:`robot_rl.safety.pose_filters` bound end-effector pose
targets, and say how they compose.

Floats and ``math`` rather than numpy: these are 3- and 7-vectors, where numpy's per-call
overhead dominates; the whole default chain runs in tens of microseconds.
"""

from __future__ import annotations

import math

from robot_rl.safety.command import Command, RobotState, SafetyEvent

NO_EVENTS: tuple[SafetyEvent, ...] = ()
EPS = 1e-9  # tolerance of every "is it inside?" check, so round-off never triggers a second clip
DT_MIN = 1e-3  # s; commands closer together than this are judged as if this far apart


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
def move_time(stamp: float | None, now: float, period: float) -> float:
    """Seconds the next move may take: since the last command, at most one control period."""
    if stamp is None:
        return period
    return min(max(now - stamp, DT_MIN), period)


def norm3(a: float, b: float, c: float) -> float:
    return math.sqrt(a * a + b * b + c * c)

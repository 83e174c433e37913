"""SafeArm: the one door to an arm. Every command, the policy's and the operator's alike,
passes the safety chain, the watchdog and the e-stop latch on its way through.

Backends wrap their arm driver in it (the simulator's today; the direct and ROS arm
nodes the same way, closest to the hardware). Its gripper view sends gripper commands
through the same chain. Nothing here clears a robot fault: a driver that raises latches
the e-stop, and only a person's explicit reset clears that.

Joint targets (:meth:`SafeArm.command_joints`) pass the same chain: the joint filter clips
them into the joint limits (less the margin) and to what each joint reaches at its speed
limit before the next command; the contact filter, the watchdog and the latch treat them
as they treat a pose. The end-effector filters (workspace box, step, speed, acceleration)
judge poses only: a joint target is not turned into a pose here, so they do not bound it.

What the arm can do is checked when the SafeArm is built, in one line, never while it
runs: a contact limit on an arm that cannot sense force (``senses_force``) is refused
unless the limits file says ``contact: none``, and ``joint_commands=True`` refuses an arm
that takes no joint targets (``takes_joint_commands``).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from robot_rl.config import ConfigError
from robot_rl.drivers.base import Arm, ArmState, Gripper, GripperState
from robot_rl.safety.chain import SafetyChain, default_chain
from robot_rl.safety.command import HOLD, Command, RobotState, SafetyEvent
from robot_rl.safety.command_filters import ContactBackoff
from robot_rl.safety.estop import EStop, EStopRecord
from robot_rl.safety.limits import CONTACT_OFF, SafetyLimits
from robot_rl.safety.watchdog import Watchdog

log = logging.getLogger("robot_rl.safety")

ALARMING = frozenset({"watchdog", "estop", "finite", "contact"})
WARN_EVERY_S = 5.0  # a repeated alarm is logged at most this often (every one is counted)


class ArmCapabilityError(ConfigError):
    """The arm cannot do what the safety limits or the caller need of it; one line, at start-up."""


def check_arm(arm: Arm, chain: SafetyChain, source: str = "the safety chain", joint_commands: bool = False) -> None:
    """Refuse, in one line, an ``arm`` that cannot serve ``chain`` (a contact filter needs an
    arm that senses force) or the caller (``joint_commands``: one that takes joint targets)."""
    if chain.find(ContactBackoff) and not arm.senses_force:
        raise ArmCapabilityError(
            f"safety limits {source}: 'contact' limits the force at the gripper, but {arm.label} cannot sense "
            f"force (its wrench reads zero, so the limit would never act); fit a force sensor its driver reads, "
            f"or write 'contact: {CONTACT_OFF}' in {source} to run this arm without a contact limit")
    if joint_commands and not arm.takes_joint_commands:
        raise ArmCapabilityError(f"{arm.label} takes no joint commands, and joint commands were asked for; "
                                 f"command end-effector poses instead")


class SafeArm(Arm):
    """``joint_commands``: whoever builds the arm will send joint targets, so an arm that
    takes none is refused here, at start-up (without it, such an arm refuses each joint
    command with :class:`ArmCapabilityError`, before anything is sent or latched)."""

    def __init__(self, arm: Arm, chain: SafetyChain, watchdog: Watchdog, clock: Callable[[], float],
                 gripper: Gripper | None = None, estop: EStop | None = None, limits: SafetyLimits | None = None,
                 joint_commands: bool = False):
        check_arm(arm, chain, "the safety chain" if limits is None else limits.source, joint_commands)
        self.arm, self.chain, self.watchdog, self.clock = arm, chain, watchdog, clock
        self.limits = limits
        self.estop = EStop() if estop is None else estop
        self.estop.subscribe(self._on_estop)
        self._gripper = gripper
        self.gripper = None if gripper is None else SafeGripper(self, gripper)
        self.counts: Counter[str] = Counter()  # every intervention by reason, for the life of the arm
        self.halted = False
        self._events: list[SafetyEvent] = []
        self._last_warning: dict[str, tuple[float, int]] = {}  # reason → (wall time, events since)
        self.watchdog.reset(clock())

    @classmethod
    def from_limits(cls, arm: Arm, limits: SafetyLimits, period: float, clock: Callable[[], float],
                    gripper: Gripper | None = None, estop: EStop | None = None,
                    joint_commands: bool = False) -> SafeArm:
        """The default chain and watchdog for ``limits`` at a control period of ``period`` s."""
        w = limits.watchdog
        return cls(arm, default_chain(limits, period), Watchdog(w.command_timeout, w.observation_timeout), clock,
                   gripper, estop, limits, joint_commands)

    # ------------------------------------------------------------------ Arm interface
    def state(self) -> ArmState:
        state = self.arm.state()
        self.watchdog.observed("state", state.stamp)
        return state

    @property
    def takes_joint_commands(self) -> bool:  # type: ignore[override]
        return self.arm.takes_joint_commands

    @property
    def senses_force(self) -> bool:  # type: ignore[override]
        return self.arm.senses_force

    @property
    def label(self) -> str:
        return self.arm.label

    def command(self, target: np.ndarray) -> None:
        self.submit(Command.ee(target))

    def command_joints(self, q: np.ndarray) -> None:
        self.submit(Command.joint(q))

    def stop(self) -> None:
        self.submit(HOLD)

    @property
    def home_pose(self) -> np.ndarray:
        return self.arm.home_pose

    def close(self) -> None:
        self.arm.close()

    # ------------------------------------------------------------------ safety
    def submit(self, command: Command) -> Command:
        """Filter ``command`` and send what is safe; returns what was sent."""
        if command.joints is not None and not self.arm.takes_joint_commands:
            raise ArmCapabilityError(f"{self.arm.label} takes no joint commands (build its SafeArm with "
                                     f"joint_commands=True to have that refused at start-up)")
        now = self.clock()
        grip = None if self._gripper is None else self._gripper.state()
        state = RobotState(self.state(), grip)
        events: list[SafetyEvent] = []
        arm_part = command.hold or command.pose is not None or command.joints is not None
        if self.estop.latched:
            record = self.estop.record
            command = HOLD
            events.append(SafetyEvent("estop", "estop_latched", {"source": record.source, "reason": record.reason},
                                      now))
        elif stale := self.watchdog.stale_observations(now):
            command = HOLD
            events.append(SafetyEvent("watchdog", "stale_observation", {"age": stale}, now))
        safe, chain_events = self.chain.apply(command, state, now)
        events.extend(chain_events)
        if arm_part and not any(e.filter == "finite" and e.reason != "quaternion_not_unit" for e in chain_events):
            self.watchdog.command_received(now)
        self._record(events)
        self._send(safe)
        return safe

    def tick(self, now: float | None = None) -> bool:
        """Check the watchdog and the latch as time passes (no command needed); halt the arm
        once when commands or observations have gone stale. Returns whether it is halted."""
        now = self.clock() if now is None else now
        values: dict[str, object] = {}
        if self.watchdog.command_stale(now):
            values["command_age"] = self.watchdog.command_age(now)
        if stale := self.watchdog.stale_observations(now):
            values["observation_age"] = stale
        if self.estop.latched:
            values["estop"] = self.estop.record.source
        if values and not self.halted:
            reason = ("command_timeout" if "command_age" in values else
                      "stale_observation" if "observation_age" in values else "estop_latched")
            self._record([SafetyEvent("watchdog", reason, values, now)])
            self._halt(now)
        return self.halted

    def observed(self, source: str, stamp: float) -> None:
        """A camera (or other sensor) reading measured at ``stamp`` reached the controller."""
        self.watchdog.observed(source, stamp)

    def reset(self) -> None:
        """A new episode: the arm was just repositioned. Clears the filters' history and arms
        the watchdog; never clears the e-stop latch or a fault."""
        self.chain.reset()
        self.watchdog.reset(self.clock())
        self.halted = False

    def take_events(self) -> list[SafetyEvent]:
        """The events since the last call (the env puts them in the step's ``info``)."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ internals
    def _record(self, events: list[SafetyEvent]) -> None:
        for e in events:
            self.counts[e.reason] += 1
            # limiting a learning policy's moves is routine (counted, and in each step's info);
            # a halt, a fault or a bad command is worth a line in the log, once every few seconds
            if e.filter not in ALARMING:
                log.debug("safety %s: %s %s", e.filter, e.reason, e.values)
                continue
            now = time.monotonic()
            last, since = self._last_warning.get(e.reason, (-math.inf, 0))
            if now - last >= WARN_EVERY_S:
                more = f" (and {since} more since the last report)" if since else ""
                log.warning("safety %s: %s %s%s", e.filter, e.reason, e.values, more)
                self._last_warning[e.reason] = (now, 0)
            else:
                self._last_warning[e.reason] = (last, since + 1)
        self._events.extend(events)

    def _send(self, safe: Command) -> None:
        try:
            if safe.hold:
                self.arm.stop()
            elif safe.joints is not None:
                self.arm.command_joints(np.asarray(safe.joints))
            elif safe.pose is not None:
                self.arm.command(np.asarray(safe.pose))
            if safe.gripper is not None and not safe.hold:
                self._gripper.command(safe.gripper)
        except Exception as e:
            self.estop.trigger("arm", f"driver fault: {type(e).__name__}: {e}")
            raise
        if safe.hold or safe.pose is not None or safe.joints is not None:
            self.halted = safe.hold

    def _halt(self, now: float) -> None:
        self.arm.stop()
        self.chain.commit(HOLD, None, now)  # type: ignore[arg-type] - a hold reads no state
        self.halted = True

    def _on_estop(self, record: EStopRecord) -> None:
        now = self.clock()
        self._record([SafetyEvent("estop", "estop_triggered", {"source": record.source, "reason": record.reason},
                                  now)])
        if not self.halted:
            try:
                self._halt(now)
            except Exception:  # the latch holds whatever the driver does
                log.exception("stopping the arm on e-stop failed")


class SafeGripper(Gripper):
    """The gripper as seen through a :class:`SafeArm`: commands pass its chain and latch."""

    def __init__(self, arm: SafeArm, gripper: Gripper):
        self.safe_arm, self.gripper = arm, gripper
        self.max_width = gripper.max_width

    def state(self) -> GripperState:
        return self.gripper.state()

    def command(self, width: float) -> None:
        self.safe_arm.submit(Command(gripper=float(width)))

    def close(self) -> None:
        self.gripper.close()

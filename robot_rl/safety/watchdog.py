"""Stale-command and stale-observation watchdog.

Pure bookkeeping on an injected clock: callers pass ``now`` (wall time on hardware, sim
time in the simulator, a fake clock in tests). Who halts the arm is :class:`SafeArm`;
the watchdog only says whether and why it should.
"""

from __future__ import annotations

import math


class Watchdog:
    def __init__(self, command_timeout: float = 0.2, observation_timeout: float = 0.3):
        if not (command_timeout > 0 and observation_timeout > 0):
            raise ValueError(f"watchdog timeouts must be > 0 s, got command_timeout={command_timeout} "
                             f"observation_timeout={observation_timeout}")
        self.command_timeout, self.observation_timeout = command_timeout, observation_timeout
        self.last_command = math.nan
        self.observations: dict[str, float] = {}

    def reset(self, now: float) -> None:
        """Arm the watchdog at ``now`` (as if a command had just come) and forget observations."""
        self.last_command = now
        self.observations.clear()

    def command_received(self, now: float) -> None:
        """A valid command arrived at ``now``."""
        self.last_command = now

    def observed(self, source: str, stamp: float) -> None:
        """``source`` (the arm state, a camera) delivered a reading measured at ``stamp``."""
        self.observations[source] = stamp

    def stale_observations(self, now: float) -> dict[str, float]:
        """Source → age (s) for every source whose newest reading is older than the timeout."""
        limit = self.observation_timeout
        return {s: now - t for s, t in self.observations.items() if not now - t <= limit}

    def command_age(self, now: float) -> float:
        return now - self.last_command

    def command_stale(self, now: float) -> bool:
        """No valid command for longer than the timeout (never armed counts as stale)."""
        return not self.command_age(now) <= self.command_timeout

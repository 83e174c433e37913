"""The e-stop latch.

Anyone may trigger it: the operator's device, the console, a ROS topic, the arm's own
fault. Only an explicit :meth:`EStop.reset` clears it; nothing in robot_rl calls reset on
its own, and robot faults are never cleared automatically.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("robot_rl.safety")


@dataclass(frozen=True)
class EStopRecord:
    source: str  # "operator", "console", "teleop", "ros", "arm", ...
    reason: str


class EStop:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._record: EStopRecord | None = None
        self._listeners: list[Callable[[EStopRecord], None]] = []

    @property
    def latched(self) -> bool:
        return self._record is not None

    @property
    def record(self) -> EStopRecord | None:
        """Who latched it and why (the first trigger; later ones while latched are logged)."""
        return self._record

    def trigger(self, source: str, reason: str) -> None:
        """Latch. Listeners (the arm wrappers) halt at once, from the caller's thread."""
        record = EStopRecord(source, reason)
        with self._lock:
            first = self._record is None
            if first:
                self._record = record
            listeners = list(self._listeners)
        log.error("E-STOP %s by %s: %s", "latched" if first else "triggered again", source, reason)
        for listener in listeners:
            listener(record)

    def reset(self) -> None:
        """The explicit, deliberate clear. Call only on a person's request."""
        with self._lock:
            record, self._record = self._record, None
        if record is not None:
            log.warning("e-stop reset (was latched by %s: %s)", record.source, record.reason)

    def subscribe(self, listener: Callable[[EStopRecord], None]) -> None:
        self._listeners.append(listener)

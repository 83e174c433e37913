"""Fixed-rate loop pacing on absolute deadlines, and loop timing statistics.

Deadlines are absolute (start + k·period), so one slow step does not shift every later
one; the pacer sleeps until shortly before the deadline and spins the rest, since
``time.sleep`` alone overshoots by up to a millisecond or more.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


class RatePacer:
    def __init__(self, hz: float, spin_s: float = 0.002, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep):
        if hz <= 0:
            raise ValueError(f"rate must be > 0 Hz, got {hz}")
        self.period = 1.0 / hz
        self.spin_s = spin_s
        self.clock, self.sleep = clock, sleep
        self.deadline: float | None = None
        self.missed = 0

    def reset(self) -> None:
        """Start a new schedule: the next deadline is one period from now."""
        self.deadline = self.clock() + self.period

    def wait(self) -> float:
        """Block until the next deadline; returns how late it was reached (s, ≥ 0).

        A loop more than a period late drops the missed ticks and starts a new schedule
        rather than running a burst of catch-up iterations.
        """
        if self.deadline is None:
            self.reset()
        remaining = self.deadline - self.clock()
        if remaining > self.spin_s:
            self.sleep(remaining - self.spin_s)
        while self.clock() < self.deadline:
            pass
        now = self.clock()
        lateness = now - self.deadline
        self.deadline += self.period
        if now > self.deadline:
            self.missed += int((now - self.deadline) // self.period) + 1  # ticks dropped
            self.deadline = now + self.period
        return lateness


@dataclass
class TimingSummary:
    period_error_ms_p50: float
    period_error_ms_p99: float
    inference_ms_p50: float
    inference_ms_p99: float
    missed_deadlines: int
    samples: int


class LoopTiming:
    """Rolling record of period errors and policy inference latencies."""

    def __init__(self, window: int = 10_000):
        self.period_errors: deque[float] = deque(maxlen=window)
        self.inference: deque[float] = deque(maxlen=window)
        self.missed = 0

    def summary(self) -> TimingSummary:
        def pct(values: deque[float], q: float) -> float:
            return float(np.percentile(np.asarray(values) * 1e3, q)) if values else float("nan")

        return TimingSummary(pct(self.period_errors, 50), pct(self.period_errors, 99), pct(self.inference, 50),
                             pct(self.inference, 99), self.missed, len(self.period_errors))

"""RatePacer on a simulated clock (absolute deadlines, dropped ticks, lateness) and in real
time, and LoopTiming's summary."""

import math
import time

import numpy as np
import pytest

from robot_rl.rl.pacing import LoopTiming, RatePacer


class FakeTime:
    """A clock that moves only when slept on, read (``tick`` per read: a spin loop's cost)
    or told to by the test's simulated work. ``overshoot`` is added to every sleep, as an
    OS that wakes a sleeper late does."""

    def __init__(self, tick: float = 1e-5, overshoot: float = 0.0):
        self.now, self.tick, self.overshoot = 0.0, tick, overshoot
        self.reads = self.sleeps = 0

    def clock(self) -> float:
        self.reads += 1
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps += 1
        self.now += seconds + self.overshoot

    def work(self, seconds: float) -> None:
        self.now += seconds


def pacer(fake: FakeTime, hz: float = 10.0, spin_s: float = 0.002) -> RatePacer:
    p = RatePacer(hz, spin_s=spin_s, clock=fake.clock, sleep=fake.sleep)
    p.reset()
    return p


def run(p: RatePacer, fake: FakeTime, work: list[float]) -> tuple[list[float], list[float]]:
    """Wait, then work for each duration; (times the waits returned, their lateness)."""
    ticks, late = [], []
    for seconds in work:
        late.append(p.wait())
        ticks.append(fake.now)
        fake.work(seconds)
    return ticks, late


def test_ticks_land_on_absolute_deadlines():
    fake = FakeTime()
    p = pacer(fake)
    start = fake.now
    ticks, late = run(p, fake, [0.01, 0.05, 0.09, 0.0, 0.03, 0.07])
    np.testing.assert_allclose(np.diff([start, *ticks]), 0.1, atol=1e-4)  # work time is absorbed
    assert max(late) < 1e-4 and min(late) >= 0
    assert p.missed == 0


def test_a_slow_step_does_not_shift_later_deadlines():
    fake = FakeTime()
    p = pacer(fake)
    start = fake.now
    ticks, late = run(p, fake, [0.01, 0.15, 0.01, 0.01, 0.01])  # the second step overruns by half a period
    schedule = start + 0.1 * np.arange(1, 6)
    np.testing.assert_allclose(ticks[:2], schedule[:2], atol=1e-4)
    assert ticks[2] == pytest.approx(schedule[1] + 0.15, abs=1e-4)  # reached late, at once
    assert late[2] == pytest.approx(0.05, abs=1e-4)  # and says by how much
    np.testing.assert_allclose(ticks[3:], schedule[3:], atol=1e-4)  # back on the original grid
    assert p.missed == 0


def test_missed_ticks_are_dropped_not_burst():
    fake = FakeTime()
    p = pacer(fake)
    start = fake.now
    ticks, late = run(p, fake, [0.01, 0.35, 0.01, 0.01, 0.01])  # overruns by 2.5 periods
    assert ticks[1] == pytest.approx(start + 0.2, abs=1e-4)
    stalled = ticks[1] + 0.35
    assert ticks[2] == pytest.approx(stalled, abs=1e-4)
    assert late[2] == pytest.approx(stalled - (start + 0.3), abs=1e-4)
    # no catch-up burst: a new schedule starts from the late tick, one period apart
    np.testing.assert_allclose(np.diff(ticks[2:]), 0.1, atol=1e-4)
    assert max(late[3:]) < 1e-4
    assert p.missed >= 1


def test_sleep_overshoot_is_absorbed_by_spinning():
    fake = FakeTime(overshoot=0.001)  # the OS wakes us 1 ms late, within the 2 ms spin margin
    p = pacer(fake, spin_s=0.002)
    _, late = run(p, fake, [0.02] * 5)
    assert max(late) < 1e-4 and fake.sleeps == 5
    fake = FakeTime(overshoot=0.003)  # beyond the spin margin the lateness shows
    p = pacer(fake, spin_s=0.002)
    _, late = run(p, fake, [0.02] * 5)
    np.testing.assert_allclose(late, 0.001, atol=1e-4)


def test_first_wait_starts_a_schedule_and_bad_rates_raise():
    fake = FakeTime()
    p = RatePacer(50.0, clock=fake.clock, sleep=fake.sleep)
    assert p.period == pytest.approx(0.02)
    start = fake.now
    assert p.wait() < 1e-4
    assert fake.now == pytest.approx(start + 0.02, abs=1e-4)
    for hz in (0.0, -1.0):
        with pytest.raises(ValueError, match="rate"):
            RatePacer(hz)


def test_reset_starts_a_new_schedule_from_now():
    fake = FakeTime()
    p = pacer(fake)
    p.wait()
    fake.work(1.0)  # e.g. an episode reset
    p.reset()
    start = fake.now
    assert p.wait() < 1e-4 and fake.now == pytest.approx(start + 0.1, abs=1e-4)
    assert p.missed == 0


def test_loop_timing_summary():
    timing = LoopTiming()
    empty = timing.summary()
    assert math.isnan(empty.period_error_ms_p99) and math.isnan(empty.inference_ms_p50) and empty.samples == 0
    timing.period_errors.extend(np.arange(101) * 1e-4)  # 0 … 10 ms
    timing.inference.extend([0.005] * 99 + [0.1])
    timing.missed = 3
    s = timing.summary()
    assert s.period_error_ms_p50 == pytest.approx(5.0)
    assert s.period_error_ms_p99 == pytest.approx(9.9)
    assert s.inference_ms_p50 == pytest.approx(5.0)
    assert s.inference_ms_p99 == pytest.approx(np.percentile([5.0] * 99 + [100.0], 99))
    assert s.missed_deadlines == 3 and s.samples == 101


def test_loop_timing_window_keeps_the_newest():
    timing = LoopTiming(window=10)
    timing.period_errors.extend([1.0] * 10 + [0.001] * 10)
    s = timing.summary()
    assert s.samples == 10 and s.period_error_ms_p99 == pytest.approx(1.0)


def test_real_time_50hz_period_error():
    """0.8 s at 50 Hz on the real clock; loose, for busy CI machines."""
    p = RatePacer(50.0)
    timing = LoopTiming()
    p.reset()
    start = time.perf_counter()
    for _ in range(40):
        timing.period_errors.append(p.wait())
        time.sleep(0.005)  # some work
    elapsed = time.perf_counter() - start
    s = timing.summary()
    assert s.samples == 40
    assert s.period_error_ms_p99 < 5.0, s
    assert elapsed == pytest.approx(0.8 + 0.005, abs=0.05)

"""The actor: runs the policy on the robot at a fixed rate, records every step locally,
and streams it to the learner.

observation → policy → env step (through the operator's InterventionWrapper, when there
is one) → EpisodeStore → learner.
The local EpisodeStore is the record of truth: if the learner is unreachable the actor
keeps acting and recording, and the streamer catches up when the learner returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from robot_rl.rl.pacing import LoopTiming, RatePacer
from robot_rl.rl.records import begin_record, end_record, step_record

log = logging.getLogger("robot_rl.actor")

Observation = dict[str, np.ndarray]


class Policy(Protocol):
    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray: ...


@dataclass
class EpisodeSummary:
    episode: int
    steps: int
    success: bool
    episode_return: float
    interventions: int


class Actor:
    def __init__(
        self,
        env: Any,
        policy: Policy,
        send: Callable[[dict[str, np.ndarray]], None] | None = None,
        store: Any | None = None,
        rate_hz: float | None = None,
        refresh_weights: Callable[[], bool] | None = None,
        weights_every_steps: int = 0,
        source: str = "online",
        seed: int = 0,
        deterministic: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        observer: Callable[[], None] | None = None,
        console: Any | None = None,
    ):
        self.env, self.policy, self.send, self.store = env, policy, send, store
        self.pacer = RatePacer(rate_hz, clock=clock) if rate_hz else None
        self.refresh_weights = refresh_weights
        self.weights_every_steps = weights_every_steps
        self.source, self.seed, self.deterministic = source, seed, deterministic
        self.clock = clock
        self.observer = observer  # called after every reset and step (e.g. to grab video frames)
        self.console = console  # the operator console (robot_rl.console), shown every step
        self.timing = LoopTiming()
        self.total_steps = 0
        self.episodes: list[EpisodeSummary] = []
        self._episode = -1
        self._obs: Observation | None = None
        self._return = 0.0
        self._steps = 0
        self._interventions = 0
        self._late, self._late_logged = 0, -1e9

    @property
    def in_episode(self) -> bool:
        return self._obs is not None

    # ------------------------------------------------------------------ loop
    def run(self, max_steps: int | None = None, max_episodes: int | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> list[EpisodeSummary]:
        """Step until a budget is spent or ``should_stop()``; always ends at an episode boundary."""
        start_episodes = len(self.episodes)
        while not should_stop():
            if max_steps is not None and self.total_steps >= max_steps and self._obs is None:
                break
            if max_episodes is not None and len(self.episodes) - start_episodes >= max_episodes:
                break
            self.step()
        return self.episodes[start_episodes:]

    def step(self) -> EpisodeSummary | None:
        """One control step (starting an episode first if none is running)."""
        if self._obs is None:
            self._begin()
        if self.pacer is not None:
            lateness = self.pacer.wait()
            self.timing.period_errors.append(lateness)
            self.timing.missed = self.pacer.missed
            if lateness > 0.5 * self.pacer.period:
                self._late += 1
                now = time.monotonic()
                if now - self._late_logged >= 10.0:  # one line per 10 s, however late every step is
                    log.warning("actor loop is %.1f ms late at %.0f Hz (%d late steps since the last report)",
                                lateness * 1e3, 1 / self.pacer.period, self._late)
                    self._late, self._late_logged = 0, now
        started = self.clock()
        proposal = np.asarray(self.policy.act(self._obs, deterministic=self.deterministic), dtype=np.float32)
        self.timing.inference.append(self.clock() - started)
        # an InterventionWrapper reports what was executed instead, and who decided it
        next_obs, reward, terminated, truncated, info = self.env.step(proposal)
        intervened = bool(info.get("intervention", False))
        fields = {
            "action": np.asarray(info.get("executed_action", proposal), dtype=np.float32), "policy_action": proposal,
            "reward": np.float32(reward), "terminated": np.bool_(terminated), "truncated": np.bool_(truncated),
            "intervention": np.bool_(intervened), "label": np.int8(info.get("label", 0)),
            "stamp": np.float64(time.time()),
        }
        if info.get("paused", False) and not (terminated or truncated):
            self._obs = next_obs  # the arm is held still and nothing is recorded while paused
            if self.console is not None:
                self.console.on_step(next_obs, self._episode, self._steps, None, info)
            return None
        if self.store is not None:
            self.store.append_step(obs=next_obs, **fields)
        if self.send is not None:
            self.send(step_record(self._episode, next_obs, fields))
        self.total_steps += 1
        self._steps += 1
        self._return += float(reward)
        self._interventions += int(intervened)
        self._obs = next_obs
        if self.observer is not None:
            self.observer()
        if self.console is not None:
            self.console.on_step(next_obs, self._episode, self._steps, float(reward), info)
        if self.refresh_weights is not None and self.weights_every_steps and \
                self.total_steps % self.weights_every_steps == 0:
            self.refresh_weights()
        if terminated or truncated:
            return self._end(bool(info.get("is_success", False)))
        return None

    def _begin(self) -> None:
        if self.refresh_weights is not None and not self.weights_every_steps:
            self.refresh_weights()  # newest weights, loaded between episodes
        self._episode += 1
        obs, _ = self.env.reset(seed=self.seed + self._episode)
        self._obs, self._return, self._steps, self._interventions = obs, 0.0, 0, 0
        if self.store is not None:
            self.store.begin_episode(obs, source=self.source, task=getattr(self.env.unwrapped.task, "name", ""))
        if self.send is not None:
            self.send(begin_record(self._episode, obs))
        if self.observer is not None:
            self.observer()
        if self.console is not None:
            self.console.on_step(obs, self._episode, 0)
        if self.pacer is not None:
            self.pacer.reset()

    def _end(self, success: bool) -> EpisodeSummary:
        summary = EpisodeSummary(self._episode, self._steps, success, self._return, self._interventions)
        if self.console is not None:
            self.console.end_episode(success, self._interventions, self._steps)
        if self.store is not None:
            self.store.end_episode(success=success)
        if self.send is not None:
            self.send(end_record(self._episode, success))
        self.episodes.append(summary)
        self._obs = None
        return summary

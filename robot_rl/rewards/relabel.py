"""The asynchronous relabeler: a reward model too slow for the actor (a large VLM, 0.3–3 s a call)
scores whole episodes in a background thread; each episode reaches the replay buffers with
its rewards recomposed from the reward model's judgement, and cut where the reward model declared
success. The learner keeps training on what it has meanwhile; the actor never waits for the
reward model, and no caller of :meth:`Relabeler.submit` waits either: past ``max_pending`` queued
episodes, an episode goes to the buffers with its own rewards at once. Nothing is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from robot_rl.rewards.base import RewardModel
from robot_rl.rewards.composer import RewardConfig, compose_rewards

log = logging.getLogger("robot_rl.rewards.relabel")

Episode = Mapping[str, Any]  # as EpisodeStore.load_episode returns one


def relabel_episode(episode: Episode, reward_model: RewardModel, task: str, cameras: Sequence[str],
                    config: RewardConfig) -> dict[str, Any]:
    """``episode`` with rewards from ``reward model``; it ends where the reward model declares success
    (``terminated`` there). Its own terminal step (the sim's success, an operator's label)
    stays a success, paid as one, whatever the reward model says; a time limit stays a truncation."""
    out = reward_model.score({name: np.asarray(episode["obs"][name]) for name in cameras}, task)
    composed = compose_rewards(out, config, succeeded=np.asarray(episode["terminated"], dtype=bool))
    n = len(composed.rewards)
    relabeled: dict[str, Any] = {k: np.asarray(v)[:n] for k, v in episode.items() if k != "obs"}
    relabeled["obs"] = {k: np.asarray(v)[:n + 1] for k, v in episode["obs"].items()}
    relabeled["reward"] = composed.rewards.astype(np.float32)
    relabeled["terminated"] = composed.terminated
    if "truncated" in relabeled:
        relabeled["truncated"] = relabeled["truncated"] & ~relabeled["terminated"]
    return relabeled


class Relabeler:
    """One background thread. :meth:`submit` never waits: while ``max_pending`` episodes are
    queued, a new one is delivered at once with its own rewards (counted in ``unjudged``). An
    episode the reward model fails on is delivered with its own rewards (``failures``); a delivery
    that fails is retried, then the episode is delivered with its own rewards (``kept_own``),
    and only if that fails too is it counted in ``undelivered`` (the learner's replay store
    still holds it). Nothing is dropped silently."""

    RETRIES = 3

    def __init__(self, reward_model: RewardModel, task: str, cameras: Sequence[str], config: RewardConfig,
                 deliver: Callable[[dict[str, Any], bool], None] | None = None, max_pending: int = 1000,
                 retry_s: float = 0.1):
        self.reward_model, self.task, self.cameras, self.config = reward_model, task, list(cameras), config
        self.deliver = deliver  # (episode, demo): set by the learner
        self.retry_s = retry_s
        self._queue: queue.Queue[tuple[Episode, bool] | None] = queue.Queue(maxsize=max_pending)
        self.relabeled = self.failures = self.unjudged = self.kept_own = self.undelivered = 0
        self._closing = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="relabeler", daemon=True)
        self._thread.start()

    def submit(self, episode: Episode, demo: bool = False) -> None:
        """Queue ``episode`` for the reward model; when the queue is full, deliver it now as it is."""
        try:
            self._idle.clear()
            self._queue.put_nowait((episode, demo))
        except queue.Full:
            self.unjudged += 1
            if self.unjudged == 1 or self.unjudged % 100 == 0:
                log.warning("relabeler: %d episodes queued for %s; %d episodes so far went to the buffers with "
                            "their own rewards", self._queue.qsize(), self.reward_model.name, self.unjudged)
            self._deliver(dict(episode), dict(episode), demo)
            if self._queue.empty():
                self._idle.set()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def wait(self, timeout: float | None = None) -> bool:
        """Until every submitted episode has been delivered; False on timeout."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._closing:  # shutting down: what waits stays in the learner's own store
                continue
            original, demo = item
            try:
                episode = relabel_episode(original, self.reward_model, self.task, self.cameras, self.config)
                self.relabeled += 1
            except Exception as e:  # a reward model that failed must not stop learning: keep the episode as it was
                self.failures += 1
                episode = original
                log.error("relabeler: %s failed on an episode (%s: %s); keeping its own rewards",
                          self.reward_model.name,
                          type(e).__name__, e)
            if not self._closing:
                self._deliver(dict(episode), dict(original), demo)
            if self._queue.empty():
                self._idle.set()

    def _deliver(self, episode: dict[str, Any], original: dict[str, Any], demo: bool) -> None:
        """Deliver ``episode``, retrying; then ``original`` (its own rewards); then count it undelivered."""
        if self.deliver is None:
            return
        for attempt in range(self.RETRIES):
            try:
                self.deliver(episode, demo)
                return
            except Exception as e:
                error = e
                time.sleep(self.retry_s * 2**attempt)
        try:
            self.deliver(original, demo)
            self.kept_own += 1
            log.error("relabeler: delivering a relabeled episode failed %d times (%s: %s); delivered it with its "
                      "own rewards", self.RETRIES, type(error).__name__, error)
        except Exception:
            self.undelivered += 1
            log.exception("relabeler: an episode could not reach the buffers (%d so far); the replay store holds it",
                          self.undelivered)

    def close(self, timeout: float = 10.0) -> None:
        """Stop without relabeling what still waits (the learner's store keeps those episodes)."""
        self._closing = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        self._thread.join(timeout)

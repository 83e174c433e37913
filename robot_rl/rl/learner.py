"""The learner: turns streamed episodes into replay, replay into SAC updates, and updates
into published policy weights and atomic checkpoints.

Online episodes go to the online buffer; demonstrations, and the intervention steps of
online episodes, go to the demo buffer (HIL-SERL); batches mix the two (RLPD's 50/50 by
default). Everything received is also written to the learner's own EpisodeStore, so a
restarted learner reloads its replay from disk and resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from robot_rl.data import EpisodeStore, MixtureSampler, ReplayBuffer, StoreSpec
from robot_rl.data.sampling import BatchPrefetcher
from robot_rl.data.spec import KeySpec
from robot_rl.rewards.relabel import Relabeler
from robot_rl.rl.agent import DEMO_KEY, SACAgent
from robot_rl.rl.checkpoints import CHECKPOINT, checkpoint_file, load_agent_state, load_checkpoint, save_checkpoint
from robot_rl.rl.records import STEP, AssembledEpisode, EpisodeAssembler, check_record
from robot_rl.schema.training import INIT_BC_WEIGHT, LearnerConfig

log = logging.getLogger("robot_rl.learner")

REPLAY_STORE = "replay.zarr"
METRICS = "metrics.jsonl"


class Learner:
    def __init__(self, agent: SACAgent, spec: StoreSpec, cfg: LearnerConfig, run_dir: str | Path | None = None,
                 demo_stores: Sequence[str | Path] = (), publish: Callable[[int, Mapping[str, np.ndarray]], None]
                 | None = None, seed: int = 0,
                 log_metrics: Callable[[Mapping[str, object], int], None] | None = None,
                 relabeler: Relabeler | None = None, init: str | Path | None = None):
        self.agent, self.spec, self.cfg = agent, spec, cfg
        self.relabeler = relabeler  # a slow reward model's: episodes reach the buffers once it has judged them
        if relabeler is not None:
            relabeler.deliver = self._add_now
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.publish_fn = publish
        self.log_metrics = log_metrics  # (metrics, env steps), e.g. WandbLog.log
        # the buffers also mark each row's origin, for the agent's imitation of demos (bc_weight)
        buffer_spec = StoreSpec(spec.obs, {**spec.steps, DEMO_KEY: KeySpec((), "bool")})
        self.online = ReplayBuffer(buffer_spec, cfg.capacity)
        self.demo = ReplayBuffer(buffer_spec, cfg.capacity)
        self.sampler = MixtureSampler({"online": self.online, "demo": self.demo},
                                      {"online": 1.0 - cfg.demo_ratio, "demo": cfg.demo_ratio})
        self.assembler = EpisodeAssembler()
        self.env_steps = 0  # environment steps received (the UTD clock)
        self.episodes_received = 0
        self._stored: set[str] = set()  # keys of the episodes in the replay store: a resent one is not stored twice
        self.duplicate_episodes = 0
        self.stream_lag_s: deque[float] = deque(maxlen=10_000)  # step stamp to arrival, the newest steps
        self.successes: list[bool] = []
        self.weights_version = 0
        self._lock = threading.Lock()
        self._prefetcher: BatchPrefetcher | None = None
        self._seed = seed
        self.store: EpisodeStore | None = None

        for path in demo_stores:
            self._load_store(path, demo=True)
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            replay = self.run_dir / REPLAY_STORE
            if replay.exists():
                self._load_store(replay, demo=False)
            if cfg.record:
                self.store = EpisodeStore.append_or_create(replay, spec)
        if init is not None and agent.cfg.bc_weight is None:
            agent.bc_weight = INIT_BC_WEIGHT  # a policy started from demos stays on them
        if self.run_dir is not None and (self.run_dir / CHECKPOINT).exists():
            self.restore(self.run_dir / CHECKPOINT)  # a restarted run continues from its own checkpoint
        elif init is not None:
            self.start_from(init, cfg.critic_warmup)

    # ------------------------------------------------------------------ data in
    def _load_store(self, path: str | Path, demo: bool) -> None:
        store = EpisodeStore.open(path, mode="r")
        if store.spec != self.spec:
            raise ValueError(f"{path} was recorded with another observation/action spec than this run's")
        for info in store.episodes():
            if info.complete and "key" in info.attrs:
                self._stored.add(info.attrs["key"])
            episode = store.load_episode(info.index)
            self._add_episode(episode, demo or info.source == "demo")
            if not demo:
                self.env_steps += info.length
                self.episodes_received += 1
        log.info("loaded %d episodes from %s", len(store.episodes()), path)

    def _add_episode(self, data: Mapping[str, object], demo: bool) -> None:
        if self.relabeler is not None:
            self.relabeler.submit(data, demo)
        else:
            self._add_now(data, demo)

    def _add_now(self, data: Mapping[str, object], demo: bool) -> None:
        marked = {**data, DEMO_KEY: np.ones(len(data["action"]), dtype=bool)}
        if demo:
            self.demo.add_episode(marked)
            return
        self.online.add_episode(data)  # unmarked: the key defaults to False
        intervened = np.asarray(data["intervention"], dtype=bool)
        if intervened.any():
            self.demo.add_episode(marked, step_mask=intervened)

    def ingest(self, actor_id: str, records: Sequence[Mapping[str, np.ndarray]], session: int = 0) -> None:
        """Take records streamed by an actor session (thread-safe; called by the transport).

        All or nothing: every record is checked against the run's spec first, and a batch
        with one that does not fit raises :class:`RecordError` before any state changes."""
        for record in records:
            check_record(record, self.spec)
        now = time.time()
        with self._lock:
            for record in records:
                if int(record["event"]) == STEP:
                    self.env_steps += 1
                    self.stream_lag_s.append(now - float(record["stamp"]))  # one machine's clock, or synced ones
                for episode in self.assembler.add(actor_id, record, session):
                    self._receive(episode)

    def _receive(self, episode: AssembledEpisode) -> None:
        if episode.key in self._stored:  # sent again after a restart whose acknowledgement was lost
            self.duplicate_episodes += 1
            log.info("episode %s arrived again; it was stored before", episode.key)
            return
        self._stored.add(episode.key)
        self._add_episode(episode.data, demo=False)
        self.episodes_received += 1
        self.successes.append(episode.success)
        if self.store is not None:
            data = episode.data
            self.store.begin_episode({k: v[0] for k, v in data["obs"].items()}, source="online",
                                     actor=episode.actor_id, key=episode.key)
            for t in range(episode.length):
                fields = {k: v[t] for k, v in data.items() if k != "obs" and k in self.spec.steps}
                self.store.append_step(obs={k: v[t + 1] for k, v in data["obs"].items()}, **fields)
            self.store.end_episode(success=episode.success)

    # ------------------------------------------------------------------ learning
    @property
    def transitions(self) -> int:
        return len(self.online) + len(self.demo)

    def updates_due(self) -> int:
        """Updates owed to reach ``utd_ratio`` × steps received, once warm."""
        if self.transitions < self.cfg.warmup_transitions:
            return 0
        return max(0, int(self.env_steps * self.cfg.utd_ratio) - self.agent.updates)

    def update(self) -> dict[str, float]:
        if self._prefetcher is None:
            self._prefetcher = BatchPrefetcher(self.sampler, self.cfg.batch_size, device=self.agent.device,
                                               seed=self._seed)
        metrics = self.agent.update(next(self._prefetcher))
        if self.agent.updates % self.cfg.publish_every == 0:
            self.publish()
            self._log_metrics(metrics)
        if self.run_dir is not None and self.agent.updates % self.cfg.checkpoint_every == 0:
            self.checkpoint()
        return metrics

    def publish(self) -> None:
        self.weights_version += 1
        if self.publish_fn is not None:
            self.publish_fn(self.weights_version, self.agent.policy_arrays())

    def _log_metrics(self, metrics: Mapping[str, float]) -> None:
        """One JSON line per publication in run_dir/metrics.jsonl, and to ``log_metrics``."""
        if self.run_dir is None:
            return
        recent = self.successes[-20:]
        line = {"time": time.time(), "updates": self.agent.updates, "env_steps": self.env_steps,
                "episodes": self.episodes_received, "success_rate": float(np.mean(recent)) if recent else None,
                "demo_transitions": len(self.demo), **self._lag_ms(),
                **metrics}
        with open(self.run_dir / METRICS, "a") as f:
            f.write(json.dumps(line) + "\n")
        if self.log_metrics is not None:
            self.log_metrics(line, self.env_steps)

    def _lag_ms(self) -> dict[str, float]:
        with self._lock:
            lags = np.asarray(self.stream_lag_s)
        if not len(lags):
            return {}
        return {"stream_lag_ms_p50": float(np.percentile(lags, 50) * 1e3),
                "stream_lag_ms_p99": float(np.percentile(lags, 99) * 1e3)}

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> Path:
        """Write run_dir/checkpoint.pt atomically (a crash mid-write leaves the previous one)."""
        if self.run_dir is None:
            raise ValueError("this learner has no run_dir to checkpoint into")
        return save_checkpoint(self.run_dir / CHECKPOINT, {
            "agent": self.agent.state_dict(), "env_steps_at_checkpoint": self.env_steps,
            "weights_version": self.weights_version})

    def restore(self, path: str | Path) -> None:
        state = load_checkpoint(path, self.agent.device)
        load_agent_state(self.agent, state["agent"], path)
        self.weights_version = int(state.get("weights_version", 0))
        log.info("resumed from %s at update %d", path, self.agent.updates)

    def start_from(self, path: str | Path, critic_warmup: int = 0) -> None:
        """Take the networks of another run's checkpoint, e.g. an offline one, as this run's
        starting point; the update count starts again from 0, and for the first
        ``critic_warmup`` updates only the critics learn (the given policy acts unchanged).

        The optimisers start fresh: Adam's second moments from offline imitation, far smaller
        than online gradients, made its first online steps many times the learning rate, and
        the policy was lost within 500 updates."""
        state = load_checkpoint(path, self.agent.device)
        fresh = {k: v for k, v in self.agent.state_dict().items() if k.endswith("_opt")}
        load_agent_state(self.agent, {**state["agent"], **fresh}, path)
        self.agent.updates = 0
        self.agent.policy_frozen_until = critic_warmup
        log.info("starting from %s", checkpoint_file(path))

    def close(self) -> None:
        if self.relabeler is not None:
            self.relabeler.close()
        if self._prefetcher is not None:
            self._prefetcher.close()
            self._prefetcher = None
        if self.store is not None:
            self.store.close()
            self.store = None

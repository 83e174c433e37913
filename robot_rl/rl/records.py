"""What an actor streams to a learner: flat dicts of arrays, one per episode event.

An episode is a ``begin`` record (the first observation), one ``step`` record per step
(the step's fields and the observation it led to) and an ``end`` record. Flat dicts of
plain arrays travel over the transport as typed arrays, never pickles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

BEGIN, STEP, END = 0, 1, 2
OBS_PREFIX = "obs/"


def begin_record(episode: int, obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"event": np.int8(BEGIN), "episode": np.int64(episode), **_obs_arrays(obs)}


def step_record(episode: int, next_obs: Mapping[str, np.ndarray], fields: Mapping[str, Any]) -> dict[str, np.ndarray]:
    record = {"event": np.int8(STEP), "episode": np.int64(episode), **_obs_arrays(next_obs)}
    record.update({k: np.asarray(v) for k, v in fields.items()})
    return record


def end_record(episode: int, success: bool) -> dict[str, np.ndarray]:
    return {"event": np.int8(END), "episode": np.int64(episode), "success": np.bool_(success)}


def _obs_arrays(obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {OBS_PREFIX + k: np.asarray(v) for k, v in obs.items()}


@dataclass
class AssembledEpisode:
    """A whole episode, shaped as :meth:`EpisodeStore.load_episode` returns one."""

    data: dict[str, Any]
    success: bool
    actor_id: str

    @property
    def length(self) -> int:
        return len(self.data["action"])


class EpisodeAssembler:
    """Collects each actor's records into whole episodes.

    Records of an episode whose ``begin`` was never seen (the learner restarted mid-episode)
    are dropped with the episode: the actor's own store still holds it.
    """

    def __init__(self) -> None:
        self._open: dict[str, tuple[int, list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]] = {}
        self.dropped_records = 0

    def add(self, actor_id: str, record: Mapping[str, np.ndarray]) -> AssembledEpisode | None:
        event, episode = int(record["event"]), int(record["episode"])
        if event == BEGIN:
            obs = {k[len(OBS_PREFIX):]: v for k, v in record.items() if k.startswith(OBS_PREFIX)}
            self._open[actor_id] = (episode, [obs], [])
            return None
        current = self._open.get(actor_id)
        if current is None or current[0] != episode:
            self.dropped_records += 1
            return None
        _, observations, steps = current
        if event == STEP:
            observations.append({k[len(OBS_PREFIX):]: v for k, v in record.items() if k.startswith(OBS_PREFIX)})
            steps.append({k: v for k, v in record.items() if not k.startswith(OBS_PREFIX)
                          and k not in ("event", "episode")})
            return None
        if event == END:
            del self._open[actor_id]
            if not steps:
                return None
            data: dict[str, Any] = {"obs": {k: np.stack([o[k] for o in observations]) for k in observations[0]}}
            data.update({k: np.stack([s[k] for s in steps]) for k in steps[0]})
            return AssembledEpisode(data, bool(record["success"]), actor_id)
        raise ValueError(f"unknown record event {event} from actor {actor_id!r}")

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

from robot_rl.data.spec import KeySpec, StoreSpec

BEGIN, STEP, END = 0, 1, 2
EVENT_NAMES = {BEGIN: "begin", STEP: "step", END: "end"}
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
    session: int = 0  # the actor's stream session
    number: int = -1  # the actor's episode number in that session

    @property
    def key(self) -> str:
        """Names the episode among all a run's actors ever sent: what tells a resent episode."""
        return f"{self.actor_id}/{self.session}/{self.number}"

    @property
    def length(self) -> int:
        return len(self.data["action"])


class RecordError(ValueError):
    """A record that does not fit the run's spec; its message names the key and the shapes."""


def check_record(record: Mapping[str, np.ndarray], spec: StoreSpec) -> None:
    """Raise :class:`RecordError` unless ``record`` is a begin, step or end record of ``spec``'s
    keys, shapes and dtype kinds (checked before the learner touches any state)."""
    event = record.get("event")
    if event is None or "episode" not in record:
        raise RecordError(f"a record needs 'event' and 'episode', got keys {sorted(record)}")
    event = int(np.asarray(event))
    if event == END:
        expected: dict[str, KeySpec] = {"success": KeySpec((), "bool")}
    elif event in (BEGIN, STEP):
        expected = {OBS_PREFIX + k: v for k, v in spec.obs.items()}
        if event == STEP:
            expected.update(spec.steps)
    else:
        raise RecordError(f"unknown record event {event}")
    given = {k: np.asarray(v) for k, v in record.items() if k not in ("event", "episode")}
    if set(given) != set(expected):
        missing, unknown = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
        raise RecordError(f"{EVENT_NAMES[event]} record: keys do not match the run's spec"
                          + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else ""))
    for key, want in expected.items():
        value = given[key]
        if value.shape != want.shape or value.dtype.kind != np.dtype(want.dtype).kind:
            raise RecordError(f"{EVENT_NAMES[event]} record: key {key!r} is {value.dtype.name}{list(value.shape)}, "
                              f"the run's spec says {want.dtype}{list(want.shape)}")


class EpisodeAssembler:
    """Collects each actor session's records into whole episodes.

    Episodes are keyed by actor id: a record from a new session of an actor id (the actor was
    restarted or replaced) closes that id's unfinished episode as truncated, so the steps of
    two actors are never merged into one episode. Records of an episode whose ``begin`` was
    never seen (the learner restarted mid-episode) are dropped with the episode: the actor's
    own store still holds it.
    """

    def __init__(self) -> None:
        self._open: dict[str, _OpenEpisode] = {}
        self.dropped_records = 0
        self.truncated_episodes = 0  # closed because their actor was replaced

    def add(self, actor_id: str, record: Mapping[str, np.ndarray], session: int = 0) -> list[AssembledEpisode]:
        """The episodes this record completes (at most two: a replaced session's, and its own)."""
        done = []
        current = self._open.get(actor_id)
        if current is not None and current.session != session:
            del self._open[actor_id]
            if current.steps:
                self.truncated_episodes += 1
                current.steps[-1]["truncated"] = np.bool_(True)
                done.append(current.assemble(actor_id, success=False))
            current = None
        event, episode = int(record["event"]), int(record["episode"])
        if event == BEGIN:
            self._open[actor_id] = _OpenEpisode(session, episode, [_obs_of(record)], [])
            return done
        if current is None or current.episode != episode:
            self.dropped_records += 1
            return done
        if event == STEP:
            current.observations.append(_obs_of(record))
            current.steps.append({k: v for k, v in record.items() if not k.startswith(OBS_PREFIX)
                                  and k not in ("event", "episode")})
            return done
        if event == END:
            del self._open[actor_id]
            if current.steps:
                done.append(current.assemble(actor_id, bool(record["success"])))
            return done
        raise RecordError(f"unknown record event {event} from actor {actor_id!r}")


@dataclass
class _OpenEpisode:
    session: int
    episode: int
    observations: list[dict[str, np.ndarray]]
    steps: list[dict[str, np.ndarray]]

    def assemble(self, actor_id: str, success: bool) -> AssembledEpisode:
        data: dict[str, Any] = {"obs": {k: np.stack([o[k] for o in self.observations]) for k in self.observations[0]}}
        data.update({k: np.stack([s[k] for s in self.steps]) for k in self.steps[0]})
        return AssembledEpisode(data, success, actor_id, self.session, self.episode)


def _obs_of(record: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[len(OBS_PREFIX):]: v for k, v in record.items() if k.startswith(OBS_PREFIX)}

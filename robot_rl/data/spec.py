"""What an episode holds: observation keys, per-step keys, and the checks every step passes.

The spec is shared by :class:`~robot_rl.data.episode_store.EpisodeStore` and
:class:`~robot_rl.data.replay_buffer.ReplayBuffer`, so an episode loaded from a store fits a
buffer without conversion, and a malformed step is refused before anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Step keys that every step must carry; the others have documented defaults.
REQUIRED_STEP_KEYS = ("action", "reward", "terminated", "truncated")

#: Label values of the ``label`` step key (operator's per-step verdict).
LABEL_NONE, LABEL_SUCCESS, LABEL_FAILURE = 0, 1, -1


@dataclass(frozen=True)
class KeySpec:
    """Shape (without the time axis) and dtype of one key."""

    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype).name)

    @property
    def is_image(self) -> bool:
        """Images are stored one chunk per frame, so appending a frame never rewrites another."""
        return self.dtype == "uint8" and len(self.shape) == 3 and self.shape[2] in (1, 3, 4)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeySpec:
        return cls(tuple(data["shape"]), data["dtype"])


def default_step_keys(action_dim: int, extra_keys: Iterable[str] = ()) -> dict[str, KeySpec]:
    """The per-step keys of a robot episode; ``extra_keys`` are float32 scalars (reward model outputs)."""
    keys = {
        "action": KeySpec((action_dim,), "float32"),
        "policy_action": KeySpec((action_dim,), "float32"),
        "reward": KeySpec((), "float32"),
        "terminated": KeySpec((), "bool"),
        "truncated": KeySpec((), "bool"),
        "intervention": KeySpec((), "bool"),
        "label": KeySpec((), "int8"),
        "stamp": KeySpec((), "float64"),
    }
    for name in extra_keys:
        if name in keys or name == "obs":
            raise ValueError(f"extra step key {name!r} clashes with a standard key")
        keys[name] = KeySpec((), "float32")
    return keys


@dataclass(frozen=True)
class StoreSpec:
    """Observation keys (stored N+1 times per episode) and step keys (N times)."""

    obs: dict[str, KeySpec]
    steps: dict[str, KeySpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.obs:
            raise ValueError("a spec needs at least one observation key")
        missing = [k for k in REQUIRED_STEP_KEYS if k not in self.steps]
        if missing:
            raise ValueError(f"a spec needs the step keys {missing}")
        for name in (*self.obs, *self.steps):
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"key name {name!r} is not a valid array name")

    @classmethod
    def from_spaces(cls, observation_space: Any, action_dim: int, extra_step_keys: Iterable[str] = ()) -> StoreSpec:
        """Build the spec from a gymnasium ``Dict`` observation space (cameras + ``state``)."""
        spaces = getattr(observation_space, "spaces", None)
        if not isinstance(spaces, Mapping):
            raise ValueError(f"expected a gymnasium Dict observation space, got {observation_space!r}")
        obs = {name: KeySpec(space.shape, np.dtype(space.dtype).name) for name, space in spaces.items()}
        return cls(obs, default_step_keys(action_dim, extra_step_keys))

    @property
    def image_keys(self) -> list[str]:
        return [k for k, s in self.obs.items() if s.is_image]

    @property
    def lowdim_obs_keys(self) -> list[str]:
        return [k for k, s in self.obs.items() if not s.is_image]

    @property
    def frame_nbytes(self) -> int:
        """Raw bytes of one observation (all keys), the unit of the replay memory budget."""
        return sum(s.nbytes for s in self.obs.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "obs": {k: s.to_json() for k, s in self.obs.items()},
            "steps": {k: s.to_json() for k, s in self.steps.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoreSpec:
        return cls(
            {k: KeySpec.from_json(v) for k, v in data["obs"].items()},
            {k: KeySpec.from_json(v) for k, v in data["steps"].items()},
        )

    def validate_obs(self, obs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Return the observation as arrays of the spec's dtypes, or raise ValueError naming the key."""
        if not isinstance(obs, Mapping):
            raise ValueError(f"observation must be a dict of {sorted(self.obs)}, got {type(obs).__name__}")
        unknown = sorted(set(obs) - set(self.obs))
        if unknown:
            raise ValueError(f"observation key(s) {unknown} are not in the store spec {sorted(self.obs)}")
        missing = sorted(set(self.obs) - set(obs))
        if missing:
            raise ValueError(f"observation key(s) {missing} are missing")
        return {k: coerce(f"obs[{k!r}]", obs[k], spec) for k, spec in self.obs.items()}

    def validate_step(self, fields: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Return every step key as an array, filling the optional ones with their defaults."""
        unknown = sorted(set(fields) - set(self.steps))
        if unknown:
            raise ValueError(f"step key(s) {unknown} are not in the store spec {sorted(self.steps)}")
        missing = [k for k in REQUIRED_STEP_KEYS if k not in fields]
        if missing:
            raise ValueError(f"step key(s) {missing} are missing")
        out = {k: coerce(k, v, self.steps[k]) for k, v in fields.items()}
        for key, spec in self.steps.items():
            if key in out:
                continue
            if key == "policy_action" and spec == self.steps["action"]:
                out[key] = out["action"].copy()  # no intervention: the policy's action was executed
            elif key == "stamp":
                out[key] = np.asarray(time.time(), dtype=spec.dtype)
            elif np.dtype(spec.dtype).kind == "f":
                out[key] = np.full(spec.shape, np.nan, dtype=spec.dtype)  # "not scored yet", unlike 0
            else:
                out[key] = np.zeros(spec.shape, dtype=spec.dtype)
        return out


_COMPATIBLE_KINDS = {"b": "b", "i": "biu", "u": "bu", "f": "biuf"}


def coerce(name: str, value: Any, spec: KeySpec) -> np.ndarray:
    """Arrays must already have the spec's dtype (a float64 image is a bug upstream, not a cast to
    make silently); plain Python numbers and lists are converted when their kind fits."""
    target = np.dtype(spec.dtype)
    if isinstance(value, np.ndarray | np.generic):
        arr = np.asarray(value)
        if arr.dtype != target:
            raise ValueError(f"{name}: dtype {arr.dtype} does not match the store's {target}")
    else:
        try:
            raw = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: cannot be read as an array ({exc})") from exc
        if raw.dtype.kind not in _COMPATIBLE_KINDS.get(target.kind, target.kind):
            raise ValueError(f"{name}: a value of kind {raw.dtype} cannot be stored as {target}")
        arr = raw.astype(target)
        if target.kind in "iu" and not np.array_equal(arr, raw):
            raise ValueError(f"{name}: value {value!r} does not fit in {target}")
    if arr.shape != spec.shape:
        raise ValueError(f"{name}: shape {arr.shape} does not match the store's {spec.shape}")
    return arr

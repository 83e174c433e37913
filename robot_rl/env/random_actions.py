"""Uniform random actions, the learning policy at its most clueless: the one random policy
that safety audits, training's warm-up, ``robot-rl rollout policy.name=random`` and the
benchmarks use. It needs only the env's action space."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def random_action(space: Any, rng: np.random.Generator) -> np.ndarray:
    """One uniform draw from the bounded Box ``space`` with ``rng``, in the space's dtype: the
    draw ``space.sample()`` makes when ``rng`` is the space's own generator."""
    return rng.uniform(space.low, space.high, space.shape).astype(space.dtype)


class RandomPolicy:
    """Uniform random actions behind the actor's policy interface (the observation is not
    looked at). Drawn with the space's own generator, seeded with ``seed``, so a run draws
    what ``space.seed(seed)`` then ``space.sample()`` would."""

    def __init__(self, space: Any, seed: int | None):
        self.space = space
        self.space.seed(seed)

    def act(self, obs: Mapping[str, np.ndarray] | None = None, deterministic: bool = False) -> np.ndarray:
        return random_action(self.space, self.space.np_random)

"""The one interface every reward model implements: ``score(frames, task)``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

Frames = Mapping[str, np.ndarray]  # camera name → (T, H, W, 3) uint8, one episode's frames in order


@dataclass(frozen=True)
class RewardOutput:
    """Per frame: task progress in [0, 1], probability that the task is done, and whether
    the reward model could judge the frame at all (a VLM's unparsable answer is not valid)."""

    progress: np.ndarray  # (T,) float32
    success_prob: np.ndarray  # (T,) float32
    valid: np.ndarray  # (T,) bool

    def __post_init__(self) -> None:
        n = len(self.progress)
        if len(self.success_prob) != n or len(self.valid) != n:
            raise ValueError(f"progress, success_prob and valid must have one entry per frame, got "
                             f"{n}, {len(self.success_prob)} and {len(self.valid)}")


class RewardModel(ABC):
    """Turns an episode's frames into progress and success estimates.

    ``inline`` reward models are cheap enough to run in the actor at the control rate; the others
    (large VLMs) run in the asynchronous relabeler on stored episodes.
    """

    name: str = "reward_model"
    inline: bool = True

    @abstractmethod
    def score(self, frames: Frames, task: str) -> RewardOutput:
        """Progress and success for every frame of ``frames`` (all cameras the same length)."""


def frame_count(frames: Frames) -> int:
    """The episode's number of frames; every camera must have that many, as uint8 RGB."""
    if not frames:
        raise ValueError("a reward model needs at least one camera's frames")
    lengths = {name: len(images) for name, images in frames.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"every camera needs the same number of frames, got {lengths}")
    for name, images in frames.items():
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"camera {name!r}: frames must be (T, H, W, 3) uint8, got {images.shape} {images.dtype}")
    return next(iter(lengths.values()))


def calibrated(scores: np.ndarray, threshold: float) -> np.ndarray:
    """``scores`` in [0, 1] mapped piecewise-linearly so that ``threshold`` lands on 0.5, where
    every consumer (the reward composer, eval) reads success."""
    t = threshold
    return np.where(scores >= t, 0.5 + 0.5 * (scores - t) / max(1 - t, 1e-6),
                    0.5 * scores / max(t, 1e-6)).astype(np.float32)

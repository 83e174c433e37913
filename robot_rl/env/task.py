"""What an episode is trying to achieve, as far as the env can tell."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TaskStatus:
    """Ground truth where the backend knows it (sim); on hardware, labels and critics fill it."""

    success: bool
    progress: float  # in [0, 1]; 1 exactly when the task is solved


class Task(ABC):
    name: str

    @abstractmethod
    def reset(self, rng: np.random.Generator) -> None:
        """Lay out the scene for a new episode (randomised from ``rng``)."""

    @abstractmethod
    def status(self) -> TaskStatus: ...

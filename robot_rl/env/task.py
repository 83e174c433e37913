"""What an episode is trying to achieve, as far as the env can tell."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TaskStatus:
    """Ground truth where the backend knows it (sim); on hardware, labels and reward models fill it."""

    success: bool
    progress: float  # in [0, 1]; 1 exactly when the task is solved


class Task(ABC):
    name: str

    @abstractmethod
    def reset(self, rng: np.random.Generator) -> None:
        """Lay out the scene for a new episode (randomised from ``rng``)."""

    @abstractmethod
    def status(self) -> TaskStatus: ...


class LabeledTask(Task):
    """A task on hardware, where the env sees no ground truth: success comes from the
    operator's label (the InterventionWrapper turns it into the success reward), and
    progress stays 0 until a reward model (or a person) says otherwise."""

    def __init__(self, name: str):
        self.name = name

    def reset(self, rng: np.random.Generator) -> None:
        """The scene is laid out by a person (or the robot's reset routine), not by the env."""

    def status(self) -> TaskStatus:
        return TaskStatus(False, 0.0)

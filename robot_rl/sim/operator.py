"""A simulated operator: the scripted expert, watching with privileged sim state, steps in
the way a good human operator would.

It takes over when the policy is stuck (task progress has not risen for ``stuck_steps``
steps, which also covers moving away from the goal), guides for ``guide_steps`` steps and
hands back. Its budget, the share of an episode's steps it may guide, falls linearly from
``budget_start`` to ``budget_end`` over ``decay_episodes`` episodes: often early, rarely
later. It labels the step that solved the task as a success. This makes human-in-the-loop training
reproducible in tests and benchmarks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from robot_rl.env.robot_env import RobotEnv
from robot_rl.sim.expert import ScriptedExpert
from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample


@dataclass(frozen=True)
class SimOperatorConfig:
    stuck_steps: int = 8
    guide_steps: int = 10
    budget_start: float = 0.8
    budget_end: float = 0.05
    decay_episodes: int = 60
    progress_epsilon: float = 0.01  # progress must rise by this much to count as progress

    def __post_init__(self) -> None:
        if self.stuck_steps < 1 or self.guide_steps < 1 or self.decay_episodes < 1:
            raise ValueError("stuck_steps, guide_steps and decay_episodes must be >= 1")
        if not 0 <= self.budget_end <= 1 or not 0 <= self.budget_start <= 1:
            raise ValueError("budgets are shares of an episode's steps, in [0, 1]")


class SimOperator(TeleopDevice):
    def __init__(self, env: RobotEnv, config: SimOperatorConfig = SimOperatorConfig(), seed: int = 0):
        self.env = env.unwrapped
        self.config = config
        self.expert = ScriptedExpert(self.env, seed=seed)
        self.episodes = 0
        self.interventions = 0  # steps guided, all episodes
        self._last_step = None
        self._new_episode()

    def _new_episode(self) -> None:
        self._best = -np.inf
        self._since_best = 0
        self._guiding = 0
        self._guided_this_episode = 0
        self._labelled = False

    @property
    def budget(self) -> float:
        """Share of this episode's steps the operator may guide."""
        c = self.config
        frac = min(1.0, self.episodes / c.decay_episodes)
        return c.budget_start + (c.budget_end - c.budget_start) * frac

    def read(self) -> TeleopSample:
        steps = self.env.steps
        if self._last_step is not None and steps <= self._last_step:
            self.episodes += 1
            self._new_episode()
        self._last_step = steps
        status = self.env.task.status()
        events: set[TeleopEvent] = set()
        if status.progress > self._best + self.config.progress_epsilon:
            self._best, self._since_best = status.progress, 0
        else:
            self._since_best += 1
        allowed = self._guided_this_episode < self.budget * self.env.max_steps
        if self._guiding == 0 and self._since_best >= self.config.stuck_steps and allowed and not status.success:
            self._guiding = self.config.guide_steps
        if self._guiding > 0 and allowed:
            self._guiding -= 1
            self._guided_this_episode += 1
            self.interventions += 1
            self._since_best = 0
            return self._guide(events)
        self._guiding = 0
        return TeleopSample(np.zeros(6), None, frozenset(events), time.monotonic())

    def outcome(self, info: dict) -> frozenset[TeleopEvent]:
        """A good operator labels the step that solved the task."""
        if info.get("is_success") and not self._labelled:
            self._labelled = True
            return frozenset({TeleopEvent.SUCCESS})
        return frozenset()

    def _guide(self, events: set[TeleopEvent]) -> TeleopSample:
        spec = self.env.action_spec
        action = self.expert.act()
        twist = np.zeros(6)
        twist[:3] = action[:3]
        if spec.rotation:
            twist[3:] = action[3:6]
        gripper = float(action[-1]) if spec.gripper else None
        return TeleopSample(twist, gripper, frozenset(events | {TeleopEvent.INTERVENE}), time.monotonic())

"""The operator between the policy and the robot.

Each step the wrapper reads the teleop device. Any deflection beyond the deadzone, a
gripper press or the intervene button makes the operator's action the executed one; the
step then reports ``intervention=True`` with both actions in ``info``. Labels (success,
failure) end the episode when ``end_on_label``; reset ends it as a truncation (the robot's
reset routine runs at the next reset); pause holds the arm still and marks the steps
``paused`` so the actor does not record them; e-stop latches through the robot's safety
layer when it has one. Nothing here blocks waiting for a person.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.data.spec import LABEL_FAILURE, LABEL_NONE, LABEL_SUCCESS
from robot_rl.env.task import TaskStatus
from robot_rl.intervention.mapping import TeleopMapper
from robot_rl.teleop.device import TeleopDevice, TeleopEvent

log = logging.getLogger("robot_rl.intervention")


@dataclass(frozen=True)
class InterventionConfig:
    deadzone: float = 0.05  # twist magnitude below which the device counts as untouched
    end_on_label: bool = True  # a success or failure label ends the episode
    operator_only: bool = False  # recording demos: every step is the operator's (untouched = hold still)


class InterventionWrapper(gym.Wrapper):
    def __init__(self, env: gym.Env, device: TeleopDevice, mapper: TeleopMapper,
                 config: InterventionConfig = InterventionConfig()):
        super().__init__(env)
        self.device, self.mapper, self.config = device, mapper, config
        self.paused = False

    def reset(self, **kwargs: Any):
        self.mapper.reset()
        self.paused = False
        return self.env.reset(**kwargs)

    def step(self, action: np.ndarray):
        policy_action = np.asarray(action, dtype=np.float32)
        sample = self.device.read()
        events = sample.events
        if TeleopEvent.ESTOP in events:
            self._estop()
        if TeleopEvent.PAUSE in events:
            self.paused = not self.paused
            log.info("operator %s the run", "paused" if self.paused else "resumed")
        robot = self.env.unwrapped
        active = (self.config.operator_only or sample.deflected(self.config.deadzone) or sample.gripper is not None
                  or TeleopEvent.INTERVENE in events)
        if self.paused:
            executed = self.mapper.action(type(sample)(np.zeros(6)), robot.backend.arm.state().ee_pose[3:])
            active = False
        elif active:
            executed = self.mapper.action(sample, robot.backend.arm.state().ee_pose[3:])
        else:
            executed = policy_action
        obs, reward, terminated, truncated, info = self.env.step(executed)
        events = events | self.device.outcome(info)
        label = LABEL_SUCCESS if TeleopEvent.SUCCESS in events else (
            LABEL_FAILURE if TeleopEvent.FAILURE in events else LABEL_NONE)
        if label == LABEL_SUCCESS:  # the operator's word is the ground truth (on hardware, the only one)
            reward = robot.reward_for(TaskStatus(True, 1.0))
        if label != LABEL_NONE and self.config.end_on_label:
            terminated = terminated or label == LABEL_SUCCESS
            truncated = truncated or label == LABEL_FAILURE
            info["is_success"] = label == LABEL_SUCCESS
        if TeleopEvent.RESET in events and not terminated:
            truncated = True
        info.update(intervention=bool(active), policy_action=policy_action, executed_action=executed, label=label,
                    paused=self.paused, operator_events=sorted(e.value for e in events))
        return obs, reward, terminated, truncated, info

    def _estop(self) -> None:
        latch = getattr(self.env.unwrapped, "estop", None)
        if latch is None:
            log.error("e-stop pressed but this robot has no safety layer to latch; holding the arm")
            self.env.unwrapped.backend.arm.stop()
        else:
            latch.trigger("operator", "teleop e-stop")

"""Which robot an env runs on, by ``robot.backend``, and the gymnasium ids of the sim tasks.

- ``sim``: the simulated MuJoCo arm (:func:`robot_rl.sim.factory.sim_env`);
- ``ros``: a real robot's topics, which ``actor_node`` subscribes to and passes in as the
  backend; the task is judged by the operator's labels.

Importing this module registers ``robot_rl/Reach-v0``, ``robot_rl/PushCube-v0`` and
``robot_rl/PickCube-v0``: ``gymnasium.make("robot_rl/PickCube-v0", overrides=("seed=1",))``.
"""

from __future__ import annotations

import gymnasium
from omegaconf import DictConfig

from robot_rl.config import ConfigError
from robot_rl.env.backend import RobotBackend
from robot_rl.env.factory import labeled_env
from robot_rl.env.robot_env import RobotEnv
from robot_rl.schema import load_config
from robot_rl.sim.factory import sim_env


def make_env(cfg: DictConfig, render_mode: str | None = None, with_cameras: bool = True,
             backend: RobotBackend | None = None) -> RobotEnv:
    """The env ``cfg`` describes; ``with_cameras=False`` leaves images out (state-only, no rendering).

    ``robot.backend=ros``: ``backend`` is the robot's topics (actor_node builds it).
    """
    if cfg.robot.backend == "ros":
        if backend is None:
            raise ConfigError("invalid value for 'robot.backend': ros: the robot's topics are subscribed by "
                              "actor_node (ros2 launch robot_rl hil_rl.launch.py); use robot=sim here")
        return labeled_env(cfg, backend, render_mode)
    if backend is not None:
        raise ValueError("make_env builds the simulated robot's backend itself; a backend is passed only for "
                         "robot.backend=ros")
    return sim_env(cfg, render_mode, with_cameras)


def make_task_env(task: str, overrides: tuple[str, ...] = (), render_mode: str | None = None,
                  with_cameras: bool = True) -> RobotEnv:
    """Entry point of the gymnasium ids (``gymnasium.make("robot_rl/PickCube-v0")``)."""
    return make_env(load_config([f"task={task}", *overrides]), render_mode=render_mode, with_cameras=with_cameras)


for _id, _task in (("Reach", "reach"), ("PushCube", "push_cube"), ("PickCube", "pick_cube")):
    if f"robot_rl/{_id}-v0" not in gymnasium.registry:
        gymnasium.register(f"robot_rl/{_id}-v0", entry_point=make_task_env, kwargs={"task": _task},
                           disable_env_checker=True)

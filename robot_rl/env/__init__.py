"""RobotEnv, its backends and wrappers.

Importing this package registers the simulated tasks with gymnasium:
``gymnasium.make("robot_rl/PickCube-v0", overrides=("seed=1",))``.
"""

import gymnasium

for _id, _task in (("Reach", "reach"), ("PushCube", "push_cube"), ("PickCube", "pick_cube")):
    if f"robot_rl/{_id}-v0" not in gymnasium.registry:
        gymnasium.register(f"robot_rl/{_id}-v0", entry_point="robot_rl.env.factory:make_task_env",
                           kwargs={"task": _task}, disable_env_checker=True)

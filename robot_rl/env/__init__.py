"""RobotEnv, the seam between robots and learning: the backend and task interfaces it is
built from, its observation and action layout, and its image transforms.

Robots implement :class:`~robot_rl.env.backend.RobotBackend` (the simulated arm in
``robot_rl.sim``, ROS 2 topics in ``robot_rl.ros``); ``robot_rl.robots.make_env`` picks one
by config. Importing ``robot_rl.robots`` registers the simulated tasks with gymnasium.
"""

"""Interventions: the operator's devices and console joined to an env.

The teleop devices (``robot_rl.teleop``) know nothing of envs; here their twists become the
env's actions (:mod:`.mapping`), an env wrapper decides who acts and records takeovers and
labels (:mod:`.wrapper`), and :mod:`.factory` builds the devices and console a config names.
"""

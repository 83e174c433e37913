"""Calibration of the rig: camera intrinsics, hand-eye, and workspace bounds.

Installed as ``robot_rl.calibration``; import it under that name, never as a bare ``calibration``.
"""

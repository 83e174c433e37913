"""Drivers chosen by name, as config and ROS parameters name them. Each import is lazy,
so a missing vendor SDK only matters to the driver that needs it (one clear line)."""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_rl.drivers.base import Arm, Camera

CAMERAS = ("opencv", "realsense")
ARMS = ("ur", "xarm")
ARM_JOINTS = {
    "ur": ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint",
           "wrist_3_joint"),
    "xarm": tuple(f"joint{i}" for i in range(1, 8)),
}


def make_camera(kind: str, name: str, camera_info: str | None = None, **params: Any) -> Camera:
    """``camera_info``: a calibrated camera_info YAML (``robot-rl calibrate intrinsics``) that
    replaces the driver's own intrinsics."""
    if camera_info:
        from robot_rl.drivers.camera_info import load_camera_info

        params["info"] = load_camera_info(camera_info)
    if kind == "opencv":
        from robot_rl.drivers.opencv_camera import OpenCVCamera

        return OpenCVCamera(name, **params)
    if kind == "realsense":
        from robot_rl.drivers.realsense import RealSenseCamera

        return RealSenseCamera(name, **params)
    raise ValueError(f"unknown camera driver {kind!r}; choose one of {CAMERAS}")


def make_arm(kind: str, address: str, home_pose: np.ndarray, **params: Any) -> Arm:
    if kind == "ur":
        from robot_rl.drivers.ur import URArm

        return URArm(address, home_pose, **params)
    if kind == "xarm":
        from robot_rl.drivers.xarm import XArm

        return XArm(address, home_pose, **params)
    raise ValueError(f"unknown arm driver {kind!r}; choose one of {ARMS}")

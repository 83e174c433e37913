"""Hardware interfaces (Camera, Arm, Gripper) and their implementations.

Installed as ``robot_rl.drivers``; import it under that name, never as a bare ``drivers``.
"""

from robot_rl.drivers.base import (
    Arm,
    ArmState,
    Camera,
    CameraInfo,
    Frame,
    Gripper,
    GripperState,
    UnsupportedCommand,
)

__all__ = ["Arm", "ArmState", "Camera", "CameraInfo", "Frame", "Gripper", "GripperState", "UnsupportedCommand"]

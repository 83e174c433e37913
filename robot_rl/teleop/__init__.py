"""Teleoperation: devices that read an operator's twist, gripper and events."""

"""Camera intrinsics, hand-eye and workspace-bounds calibration (installed as robot_rl.calibration)."""

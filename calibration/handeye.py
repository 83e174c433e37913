"""Hand-eye calibration: where a camera sits on the arm (eye-in-hand, a wrist camera) or
in the robot's base frame (eye-to-hand, a fixed camera), from arm poses and board poses.

The solution comes from OpenCV's calibrateHandEye; the residual report checks it the way
a user would: with the solution, every view predicts the pose of the thing that did not
move (the board on the table, or the board in the gripper), and the spread of those
predictions, in millimetres and degrees, is the residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl.calibration.board import CalibrationError, invert, to_matrix

MIN_POSES = 5
MIN_ROTATION_DEG = 5.0  # relative rotations smaller than this carry no orientation information
METHODS = {"park": cv2.CALIB_HAND_EYE_PARK, "tsai": cv2.CALIB_HAND_EYE_TSAI, "horaud": cv2.CALIB_HAND_EYE_HORAUD,
           "andreff": cv2.CALIB_HAND_EYE_ANDREFF, "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS}


@dataclass
class HandEyeResult:
    setup: str  # eye_in_hand | eye_to_hand
    transform: np.ndarray  # 4×4: T_gripper_cam (eye-in-hand) or T_base_cam (eye-to-hand)
    fixed: np.ndarray  # 4×4: T_base_board (eye-in-hand) or T_gripper_board (eye-to-hand)
    residual_mm: float  # RMS spread of the fixed transform's position predicted by each view
    residual_deg: float  # RMS spread of its orientation
    method: str

    def report(self) -> dict:
        pos = self.transform[:3, 3]
        quat = Rotation.from_matrix(self.transform[:3, :3]).as_quat(scalar_first=True)
        frame = "gripper" if self.setup == "eye_in_hand" else "base"
        return {"setup": self.setup, "method": self.method, f"camera_in_{frame}": {
                    "position_m": [round(float(v), 6) for v in pos],
                    "quaternion_wxyz": [round(float(v), 8) for v in quat]},
                "residual_mm": round(self.residual_mm, 3), "residual_deg": round(self.residual_deg, 4)}


def check_pose_diversity(t_base_gripper: list[np.ndarray]) -> None:
    """Hand-eye needs rotations about at least two non-parallel axes; raise a clear error otherwise."""
    if len(t_base_gripper) < MIN_POSES:
        raise CalibrationError(f"too few poses: {len(t_base_gripper)}; hand-eye needs ≥ {MIN_POSES} "
                               f"(15 or more give millimetre accuracy)")
    axes = []
    first = t_base_gripper[0][:3, :3]
    for t in t_base_gripper[1:]:
        rotvec = Rotation.from_matrix(first.T @ t[:3, :3]).as_rotvec()
        if np.degrees(np.linalg.norm(rotvec)) >= MIN_ROTATION_DEG:
            axes.append(rotvec / np.linalg.norm(rotvec))
    if not axes:
        raise CalibrationError(f"degenerate poses: the gripper never rotates by {MIN_ROTATION_DEG}° or more "
                               f"between poses; tilt it about two different axes")
    spread = np.linalg.svd(np.array(axes), compute_uv=False)
    if len(spread) < 2 or spread[1] < 0.1 * spread[0]:
        raise CalibrationError("degenerate poses: every rotation is about one axis; hand-eye needs rotations "
                               "about at least two non-parallel axes")


def calibrate_hand_eye(t_base_gripper: list[np.ndarray], t_cam_board: list[np.ndarray],
                       setup: str = "eye_in_hand", method: str = "park") -> HandEyeResult:
    """``t_base_gripper[i]``: the arm's end-effector pose at view i; ``t_cam_board[i]``: the board's
    pose seen by the camera then (both 4×4, metres)."""
    if setup not in ("eye_in_hand", "eye_to_hand"):
        raise CalibrationError(f"setup must be 'eye_in_hand' or 'eye_to_hand', got {setup!r}")
    if method not in METHODS:
        raise CalibrationError(f"unknown hand-eye method {method!r}; choose one of {sorted(METHODS)}")
    if len(t_base_gripper) != len(t_cam_board):
        raise CalibrationError(f"{len(t_base_gripper)} arm poses but {len(t_cam_board)} board poses")
    check_pose_diversity(t_base_gripper)
    # eye-to-hand is the same problem with the base and gripper swapped (OpenCV's documented trick)
    arm = t_base_gripper if setup == "eye_in_hand" else [invert(t) for t in t_base_gripper]
    r, t = cv2.calibrateHandEye([a[:3, :3] for a in arm], [a[:3, 3] for a in arm],
                                [b[:3, :3] for b in t_cam_board], [b[:3, 3] for b in t_cam_board],
                                method=METHODS[method])
    x = to_matrix(r, t)
    predictions = [a @ x @ b for a, b in zip(arm, t_cam_board, strict=True)]
    fixed, residual_mm, residual_deg = _mean_pose(predictions)
    return HandEyeResult(setup, x, fixed, residual_mm, residual_deg, method)


def _mean_pose(poses: list[np.ndarray]) -> tuple[np.ndarray, float, float]:
    positions = np.array([p[:3, 3] for p in poses])
    rotations = Rotation.from_matrix(np.array([p[:3, :3] for p in poses]))
    mean_rot = rotations.mean()
    mean = to_matrix(mean_rot.as_matrix(), positions.mean(axis=0))
    pos_rms = float(np.sqrt(np.mean(np.sum((positions - positions.mean(axis=0)) ** 2, axis=1)))) * 1000
    rot_rms = float(np.degrees(np.sqrt(np.mean((mean_rot.inv() * rotations).magnitude() ** 2))))
    return mean, pos_rms, rot_rms


def guided_poses(center: np.ndarray, n: int = 15, tilt_deg: float = 20.0, shift_m: float = 0.05,
                 seed: int = 0) -> list[np.ndarray]:
    """A pose sequence to collect data with: end-effector poses (x, y, z, qw, qx, qy, qz) around
    ``center`` (same layout), each tilted about a different axis, so the set is never degenerate."""
    center = np.asarray(center, dtype=float)
    if n < MIN_POSES:
        raise CalibrationError(f"a pose sequence needs ≥ {MIN_POSES} poses, got {n}")
    rng = np.random.default_rng(seed)
    base = Rotation.from_quat(center[3:], scalar_first=True)
    poses = []
    for i in range(n):
        angle = 2 * np.pi * i / n
        axis = np.array([np.cos(angle), np.sin(angle), 0.3 * np.sin(2 * angle)])  # sweeps all tilt directions
        tilt = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.radians(tilt_deg) * rng.uniform(0.6, 1.0))
        spin = Rotation.from_rotvec([0, 0, np.radians(tilt_deg) * rng.uniform(-1, 1)])
        rot = base * tilt * spin
        pos = center[:3] + rng.uniform(-shift_m, shift_m, 3) * np.array([1, 1, 0.5])
        poses.append(np.concatenate([pos, rot.as_quat(scalar_first=True)]))
    return poses


def pose_matrix(pose: np.ndarray) -> np.ndarray:
    """(x, y, z, qw, qx, qy, qz) → 4×4."""
    pose = np.asarray(pose, dtype=float)
    return to_matrix(Rotation.from_quat(pose[3:], scalar_first=True).as_matrix(), pose[:3])

"""The simulated rig with a calibration board on its table: the arm moves to poses, the
wrist camera takes pictures, and the true camera mounting is known, so the calibration
procedure can be run (and checked) end to end without a robot."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from robot_rl.calibration.board import Board, invert, to_matrix
from robot_rl.calibration.handeye import pose_matrix
from robot_rl.sim.simulation import ArmSimulation, Pose, scene_path

# MuJoCo cameras look along -z with y up; OpenCV's along +z with y down
MUJOCO_TO_OPENCV = to_matrix(np.diag([1.0, -1.0, -1.0]), np.zeros(3))


class SimCalibrationRig:
    def __init__(self, board: Board, board_xy: tuple[float, float] = (0.5, 0.0), size: tuple[int, int] = (640, 480),
                 camera: str = "wrist", pixels_per_metre: float = 4000.0):
        self._tmp = tempfile.TemporaryDirectory(prefix="robot_rl_board_")
        texture = Path(self._tmp.name) / "board.png"
        cv2.imwrite(str(texture), board.image(pixels_per_metre))
        w, h = board.spec.size_m
        margin = 0.02  # white paper around the pattern
        scene = Path(scene_path()).read_text()
        asset = (f'<asset><texture name="calib_board" type="2d" file="{texture}"/>'
                 f'<material name="calib_board" texture="calib_board" texrepeat="1 1" texuniform="false"/></asset>')
        geoms = (f'<geom name="calib_paper" type="box" size="{w / 2 + margin} {h / 2 + margin} 0.0005" '
                 f'pos="{board_xy[0]} {board_xy[1]} 0.0004" rgba="1 1 1 1" contype="0" conaffinity="0"/>'
                 f'<geom name="calib_board" type="plane" size="{w / 2} {h / 2} 0.001" '
                 f'pos="{board_xy[0]} {board_xy[1]} 0.0011" material="calib_board" contype="0" conaffinity="0"/>')
        scene = scene.replace("<worldbody>", asset + "<worldbody>" + geoms, 1)
        self.sim = ArmSimulation(xml=scene)
        self.camera, self.size = camera, size
        # the wrist camera looks ahead of and below the gripper: start behind the board, looking at it
        self.home = np.array([board_xy[0] + 0.02, board_xy[1], 0.3, *self.sim.home_quat])
        self.sim.set_home(self.home[:3])
        self.q = self.sim.home_q.copy()
        self.sim.reset(self.q, 0.08)
        self.sim.place_cube(np.array([0.25, 0.4, 0.02]), 0.0)  # out of sight
        self.sim.place_target(np.array([0.25, -0.4, 0.0]), shape=None)

    def camera_matrix(self) -> np.ndarray:
        w, h = self.size
        f = 0.5 * h / np.tan(np.radians(self.sim.camera_fovy(self.camera)) / 2)
        return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])

    def move_to(self, pose: np.ndarray) -> np.ndarray:
        """Put the end effector at ``pose`` (x, y, z, qw, qx, qy, qz); returns the measured T_base_gripper."""
        target = Pose(np.asarray(pose[:3], float), np.asarray(pose[3:], float) / np.linalg.norm(pose[3:]))
        self.q = self.sim.solve_ik(target, self.q)
        self.sim.reset(self.q, 0.08)
        return pose_matrix(self.sim.ee_pose().as_array())

    def views(self, poses: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Drive through ``poses`` taking a picture at each: (T_base_gripper list, image list)."""
        arm, images = [], []
        for pose in poses:
            arm.append(self.move_to(pose))
            images.append(self.image())
        return arm, images

    def image(self) -> np.ndarray:
        w, h = self.size
        return self.sim.render(self.camera, h, w)

    def true_mount(self) -> np.ndarray:
        """T_gripper_cam: the wrist camera (OpenCV axes) in the end-effector frame, from the model."""
        d, m = self.sim.data, self.sim.model
        cam = m.camera(self.camera).id
        world_cam = to_matrix(d.cam_xmat[cam].reshape(3, 3), d.cam_xpos[cam]) @ MUJOCO_TO_OPENCV
        world_ee = to_matrix(d.site_xmat[self.sim.ee_site].reshape(3, 3), d.site_xpos[self.sim.ee_site])
        return invert(world_ee) @ world_cam

    def close(self) -> None:
        self.sim.close()
        self._tmp.cleanup()

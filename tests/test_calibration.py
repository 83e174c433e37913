"""Calibration on synthetic data with known ground truth: OpenCV draws the board, a
homography projects it into a pinhole camera at known poses, with pixel noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_rl.calibration.board import Board, BoardSpec, CalibrationError, invert, render_view, to_matrix
from robot_rl.calibration.handeye import calibrate_hand_eye, guided_poses, pose_matrix
from robot_rl.calibration.intrinsics import calibrate_intrinsics
from robot_rl.drivers.camera_info import CameraInfoError, camera_info_yaml, load_camera_info

SIZE = (640, 480)
K = np.array([[600.0, 0, 322.0], [0, 603.0, 236.0], [0, 0, 1]])


def board_views(board: Board, n: int, rng: np.random.Generator, distance=(0.35, 0.6), tilt_deg=30.0):
    """Board poses in the camera (T_cam_board) facing it, tilted about both axes, centred near the optical axis."""
    w, h = board.spec.size_m
    centre = np.array([w / 2, h / 2, 0.0])
    views = []
    for _ in range(n):
        r = Rotation.from_euler("xyz", [*rng.uniform(-tilt_deg, tilt_deg, 2), rng.uniform(-20, 20)], degrees=True)
        d = rng.uniform(*distance)
        offset = np.array([*rng.uniform(-0.15, 0.15, 2) * d, d])
        views.append(to_matrix(r.as_matrix(), offset - r.as_matrix() @ centre))
    return views


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(a[:3, :3].T @ b[:3, :3]).magnitude()))


@pytest.fixture(scope="module")
def board():
    return Board(BoardSpec())


def test_intrinsics_focal_length_within_one_percent(board):
    rng = np.random.default_rng(0)
    images = [render_view(board, K, t, SIZE, rng) for t in board_views(board, 16, rng)]
    images += [images[0].copy()]  # a repeated view adds nothing
    result = calibrate_intrinsics(board, images)
    assert abs(result.k[0, 0] / K[0, 0] - 1) < 0.01 and abs(result.k[1, 1] / K[1, 1] - 1) < 0.01
    assert abs(result.k[0, 2] - K[0, 2]) < 5 and abs(result.k[1, 2] - K[1, 2]) < 5
    assert result.rms < 1.0 and result.image_size == SIZE
    assert result.rejected.get(16, "").startswith("adds little")


def test_checkerboard_intrinsics(board):
    checker = Board(BoardSpec(kind="checkerboard", squares=(8, 6), square=0.03))
    rng = np.random.default_rng(1)
    images = [render_view(checker, K, t, SIZE, rng, noise=1.0) for t in board_views(checker, 12, rng, tilt_deg=25)]
    result = calibrate_intrinsics(checker, images)
    assert abs(result.k[0, 0] / K[0, 0] - 1) < 0.01


def test_intrinsics_bad_input_names_the_cause(board):
    rng = np.random.default_rng(2)
    blank = [np.full((480, 640), 200, np.uint8)] * 10
    with pytest.raises(CalibrationError, match=r"too few usable views: 0 of 10 \(board found in 0\)"):
        calibrate_intrinsics(board, blank)
    few = [render_view(board, K, t, SIZE, rng) for t in board_views(board, 3, rng)]
    with pytest.raises(CalibrationError, match="too few usable views: 3 of 3"):
        calibrate_intrinsics(board, few)
    with pytest.raises(CalibrationError, match="one size"):
        calibrate_intrinsics(board, [few[0], few[1][:100]])
    with pytest.raises(CalibrationError, match="no images"):
        calibrate_intrinsics(board, [])


def test_camera_info_yaml_round_trip(tmp_path, board):
    rng = np.random.default_rng(3)
    result = calibrate_intrinsics(board, [render_view(board, K, t, SIZE, rng) for t in board_views(board, 10, rng)])
    info = result.camera_info("front_optical")
    path = tmp_path / "front.yaml"
    path.write_text(camera_info_yaml(info))
    assert load_camera_info(path) == info
    path.write_text("image_width: 640\n")
    with pytest.raises(CameraInfoError, match="not a camera_info YAML"):
        load_camera_info(path)
    with pytest.raises(CameraInfoError, match="no camera_info file"):
        load_camera_info(tmp_path / "missing.yaml")


def observe(board, t_cam_board_true, rng):
    """What a calibration run sees: the board detected in a rendered image, its pose solved."""
    detection = board.detect(render_view(board, K, t_cam_board_true, SIZE, rng))
    assert detection is not None
    return board.pose(detection, K, np.zeros(5))


@pytest.mark.parametrize("setup", ["eye_in_hand", "eye_to_hand"])
def test_hand_eye_within_2_mm_and_0_2_degrees_from_15_poses(board, setup):
    rng = np.random.default_rng(4)
    x_true = to_matrix(Rotation.from_euler("xyz", [3, -4, 92], degrees=True).as_matrix(), [0.052, -0.011, 0.083])
    fixed_true = to_matrix(Rotation.from_euler("x", 180, degrees=True).as_matrix(), [0.45, 0.12, 0.0])
    arm, seen = [], []
    for t_cam_board in board_views(board, 15, rng):
        if setup == "eye_in_hand":  # camera on the gripper, board on the table (fixed_true = T_base_board)
            t_base_gripper = fixed_true @ invert(t_cam_board) @ invert(x_true)
        else:  # camera fixed in the base (x_true = T_base_cam), board in the gripper (fixed_true = T_gripper_board)
            t_base_gripper = x_true @ t_cam_board @ invert(fixed_true)
        arm.append(t_base_gripper)
        seen.append(observe(board, t_cam_board, rng))
    result = calibrate_hand_eye(arm, seen, setup)
    error_mm = np.linalg.norm(result.transform[:3, 3] - x_true[:3, 3]) * 1000
    assert error_mm < 2.0 and angle_deg(result.transform, x_true) < 0.2, (error_mm, angle_deg(result.transform,
                                                                                                x_true))
    assert result.residual_mm < 2.0 and result.residual_deg < 0.3
    assert np.linalg.norm(result.fixed[:3, 3] - fixed_true[:3, 3]) * 1000 < 3.0
    report = result.report()
    assert report["setup"] == setup and "residual_mm" in report


def test_hand_eye_refuses_degenerate_pose_sets():
    down = pose_matrix([0.4, 0, 0.3, 0, 1, 0, 0])
    shifted = [down @ to_matrix(np.eye(3), [0.01 * i, 0.02 * i, 0]) for i in range(10)]
    with pytest.raises(CalibrationError, match="never rotates"):
        calibrate_hand_eye(shifted, shifted)
    one_axis = [down @ to_matrix(Rotation.from_euler("z", 10 * i, degrees=True).as_matrix(), [0, 0, 0])
                for i in range(10)]
    with pytest.raises(CalibrationError, match="about one axis"):
        calibrate_hand_eye(one_axis, one_axis)
    with pytest.raises(CalibrationError, match="too few poses: 3"):
        calibrate_hand_eye(shifted[:3], shifted[:3])
    with pytest.raises(CalibrationError, match="10 arm poses but 9 board poses"):
        calibrate_hand_eye(shifted, shifted[:9])


def test_guided_poses_are_diverse_enough():
    from robot_rl.calibration.handeye import check_pose_diversity

    poses = guided_poses(np.array([0.45, 0.0, 0.35, 0, 1, 0, 0]), n=15)
    assert len(poses) == 15 and all(abs(np.linalg.norm(p[3:]) - 1) < 1e-9 for p in poses)
    check_pose_diversity([pose_matrix(p) for p in poses])  # raises if degenerate


def test_sim_wrist_camera_calibrates_end_to_end_against_its_true_mounting(board):
    """The simulated arm moves through a guided pose sequence over a board on its table; the
    wrist camera's pictures give intrinsics, then hand-eye; both match the MuJoCo model."""
    from robot_rl.calibration.sim_rig import SimCalibrationRig

    rig = SimCalibrationRig(board)
    try:
        arm, images = rig.views(guided_poses(rig.home, n=20, tilt_deg=18, shift_m=0.03))
        intrinsics = calibrate_intrinsics(board, images, novelty=0.0)
        true_k = rig.camera_matrix()
        assert abs(intrinsics.k[1, 1] / true_k[1, 1] - 1) < 0.01
        kept = [(arm[i], board.pose(board.detect(images[i]), intrinsics.k, intrinsics.dist)) for i in intrinsics.used]
        result = calibrate_hand_eye([a for a, _ in kept], [b for _, b in kept], "eye_in_hand")
        truth = rig.true_mount()
    finally:
        rig.close()
    error_mm = np.linalg.norm(result.transform[:3, 3] - truth[:3, 3]) * 1000
    assert error_mm < 2.0 and angle_deg(result.transform, truth) < 0.2, (error_mm, angle_deg(result.transform, truth))


# ---------------------------------------------------------------------- robot-rl calibrate
def test_calibrate_intrinsics_from_files_then_handeye_from_the_sim(tmp_path, board, capsys):
    import cv2
    import yaml

    from robot_rl.cli import main

    rng = np.random.default_rng(5)
    shots = tmp_path / "shots"
    shots.mkdir()
    for i, t in enumerate(board_views(board, 12, rng)):
        cv2.imwrite(str(shots / f"{i:02d}.png"), render_view(board, K, t, SIZE, rng))
    rigs = tmp_path / "rigs"
    common = [f"calibrate.dir={rigs}", "calibrate.rig=lab1", "calibrate.camera=front"]
    assert main(["calibrate", "intrinsics", "calibrate.source=files", f"calibrate.images={shots}", *common]) == 0
    current = load_camera_info(rigs / "lab1" / "front_intrinsics.yaml")
    assert abs(current.fx / K[0, 0] - 1) < 0.01
    text = (rigs / "lab1" / "front_intrinsics.yaml").read_text()
    assert text.startswith("# robot_rl calibration: front_intrinsics, rig lab1\n# made ") and "# rms_px: " in text
    assert len(list((rigs / "lab1").glob("front_intrinsics-*.yaml"))) == 1  # the versioned copy

    assert main(["calibrate", "poses", *common, "calibrate.views=15"]) == 0
    assert len(yaml.safe_load((rigs / "lab1" / "handeye_poses.yaml").read_text())) == 15

    capsys.readouterr()
    assert main(["calibrate", "handeye", f"calibrate.dir={rigs}", "calibrate.rig=sim"]) == 0
    assert '"error_vs_model_mm"' in capsys.readouterr().out


def test_calibrate_bad_input_is_one_line(tmp_path, capsys):
    from robot_rl.cli import main

    assert main(["calibrate", "intrinsics", "calibrate.source=files", f"calibrate.images={tmp_path}"]) == 1
    assert "calibration failed: no images" in capsys.readouterr().err
    assert main(["calibrate", "intrinsics", "calibrate.bord.kind=charuco"]) == 2
    assert "calibrate.bord" in capsys.readouterr().err


def test_workspace_from_marked_corners_writes_a_valid_safety_file(tmp_path):
    import yaml

    from robot_rl.calibration.procedures import workspace
    from robot_rl.safety import load_limits
    from robot_rl.schema import load_config
    from robot_rl.sim.simulation import ARM_JOINTS

    corners = tmp_path / "corners.yaml"
    corners.write_text(yaml.safe_dump([[0.3, -0.2, 0.02, 0, 1, 0, 0], [0.6, 0.25, 0.3, 0, 1, 0, 0],
                                       [0.45, 0.0, 0.1, 0, 1, 0, 0]]))
    cfg = load_config([f"calibrate.dir={tmp_path}", "calibrate.rig=lab1", "calibrate.source=files",
                       f"calibrate.poses={corners}", "calibrate.margin=0.01"], name="calibrate")
    summary = workspace(cfg)
    limits = load_limits(summary["current"], ARM_JOINTS)
    assert limits.workspace.low == [0.31, -0.19, 0.03] and limits.workspace.high == [0.59, 0.24, 0.29]
    assert limits.contact == load_limits("sim_panda", ARM_JOINTS).contact  # the rest kept from the base file
    flat = tmp_path / "flat.yaml"
    flat.write_text(yaml.safe_dump([[0.3, -0.2, 0.1, 0, 1, 0, 0], [0.6, 0.25, 0.1, 0, 1, 0, 0]]))
    cfg.calibrate.poses = str(flat)
    with pytest.raises(CalibrationError, match="span less than 2 cm along z"):
        workspace(cfg)


def test_workspace_by_jogging_the_sim_arm_with_a_teleop_device(tmp_path):
    """A test double of a teleop device pushes the arm two ways and marks a corner after each."""
    from robot_rl.calibration.procedures import workspace
    from robot_rl.schema import load_config
    from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample

    class Jogger(TeleopDevice):
        def __init__(self):
            self.script = ([np.array([1.0, 1.0, 1.0, 0, 0, 0])] * 5 + ["mark"] + [np.array([-1.0, -1.0, -1.0, 0, 0, 0])]
                           * 10 + ["mark", "done"])

        def read(self):
            step = self.script.pop(0)
            if isinstance(step, str):
                event = TeleopEvent.SUCCESS if step == "mark" else TeleopEvent.FAILURE
                return TeleopSample(np.zeros(6), events=frozenset({event}))
            return TeleopSample(step)

    cfg = load_config([f"calibrate.dir={tmp_path}", "calibrate.source=teleop", "teleop=keyboard"], name="calibrate")
    summary = workspace(cfg, device=Jogger())
    assert summary["corners"] == 2
    assert all(h - lo > 0.05 for lo, h in zip(summary["low"], summary["high"], strict=True))

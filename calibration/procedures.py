"""The ``robot-rl calibrate`` procedures: gather views (from files, or from the simulated rig),
solve, report residuals, and save the result versioned under the rig's folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml
from omegaconf import DictConfig

from robot_rl.calibration.board import Board, BoardSpec, CalibrationError
from robot_rl.calibration.handeye import calibrate_hand_eye, guided_poses, pose_matrix
from robot_rl.calibration.intrinsics import calibrate_intrinsics
from robot_rl.calibration.results import save_result
from robot_rl.calibration.workspace import WorkspaceRecorder, write_safety_yaml
from robot_rl.drivers.camera_info import camera_info_yaml, load_camera_info

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def board_from(cfg: DictConfig) -> Board:
    b = cfg.calibrate.board
    return Board(BoardSpec(b.kind, tuple(b.squares), b.square, b.marker, b.dictionary))


def read_images(folder: str | None) -> list[np.ndarray]:
    if not folder:
        raise CalibrationError("source=files needs calibrate.images=FOLDER")
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
        if Path(folder).is_dir() else []
    if not paths:
        raise CalibrationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder!r}")
    images = []
    for p in paths:
        image = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if image is None:
            raise CalibrationError(f"cannot read image {p}")
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return images


def read_poses(path: str | None) -> list[np.ndarray]:
    if not path or not Path(path).is_file():
        raise CalibrationError(f"calibrate.poses must be a YAML file of [x, y, z, qw, qx, qy, qz] poses, got {path!r}")
    poses = yaml.safe_load(Path(path).read_text())
    if not isinstance(poses, list) or not all(isinstance(p, list) and len(p) == 7 for p in poses):
        raise CalibrationError(f"{path}: expected a list of [x, y, z, qw, qx, qy, qz] poses")
    return [np.asarray(p, dtype=float) for p in poses]


def _sim_views(cfg: DictConfig, board: Board):
    from robot_rl.calibration.sim_rig import SimCalibrationRig

    c = cfg.calibrate
    if c.camera != "wrist":
        raise CalibrationError(f"the simulated rig calibrates its wrist camera, not {c.camera!r}")
    rig = SimCalibrationRig(board)
    try:
        arm, images = rig.views(guided_poses(rig.home, n=c.views, tilt_deg=c.tilt_deg, shift_m=0.03, seed=cfg.seed))
        return arm, images, rig.true_mount()
    finally:
        rig.close()


def intrinsics(cfg: DictConfig) -> dict:
    c, board = cfg.calibrate, board_from(cfg)
    images = _sim_views(cfg, board)[1] if c.source == "sim" else read_images(c.images)
    result = calibrate_intrinsics(board, images, novelty=0.0 if c.source == "sim" else 0.05)
    info = result.camera_info(f"{c.camera}_optical")
    summary = {"rms_px": round(result.rms, 4), "views_used": len(result.used), "views_given": len(images),
               "fx": round(info.fx, 3), "fy": round(info.fy, 3), "cx": round(info.cx, 3), "cy": round(info.cy, 3)}
    versioned, current = save_result(c.dir, c.rig, f"{c.camera}_intrinsics", camera_info_yaml(info), summary)
    for index, why in result.rejected.items():
        print(f"  view {index}: not used ({why})")
    return {**summary, "saved": str(versioned), "current": str(current)}


def handeye(cfg: DictConfig) -> dict:
    c, board = cfg.calibrate, board_from(cfg)
    truth = None
    if c.source == "sim":
        arm, images, truth = _sim_views(cfg, board)
        result = calibrate_intrinsics(board, images, novelty=0.0)
        k, dist = result.k, result.dist
    else:
        images, poses = read_images(c.images), read_poses(c.poses)
        if len(images) != len(poses):
            raise CalibrationError(f"{len(images)} images but {len(poses)} poses: one pose per image, in name order")
        arm = [pose_matrix(p) for p in poses]
        info = load_camera_info(c.intrinsics or Path(c.dir) / c.rig / f"{c.camera}_intrinsics.yaml")
        k, dist = info.k, np.asarray(info.distortion)
    views = [(a, board.detect(img)) for a, img in zip(arm, images, strict=True)]
    found = [(a, board.pose(d, k, dist)) for a, d in views if d is not None]
    if len(found) < len(views):
        print(f"  board not found in {len(views) - len(found)} of {len(views)} images; those are left out")
    result = calibrate_hand_eye([a for a, _ in found], [b for _, b in found], c.setup, c.method)
    report = result.report()
    summary = {"residual_mm": report["residual_mm"], "residual_deg": report["residual_deg"], "views": len(found)}
    if truth is not None:
        summary["error_vs_model_mm"] = round(float(np.linalg.norm(result.transform[:3, 3] - truth[:3, 3]) * 1000), 3)
    versioned, current = save_result(c.dir, c.rig, f"{c.camera}_handeye", yaml.safe_dump(report, sort_keys=False),
                                     summary)
    return {**summary, "saved": str(versioned), "current": str(current)}


def poses(cfg: DictConfig) -> dict:
    """The guided pose sequence to drive the arm through while taking pictures (source=files later)."""
    c = cfg.calibrate
    home = np.array([*cfg.robot.home_ee_pos, 0.0, 1.0, 0.0, 0.0])  # gripper down over the home position
    sequence = [[round(float(v), 5) for v in p] for p in guided_poses(home, n=c.views, tilt_deg=c.tilt_deg)]
    path = Path(c.dir) / c.rig / "handeye_poses.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# drive the end effector to each pose, take a picture, save it as NN.png (name order)\n"
                    + yaml.safe_dump(sequence, default_flow_style=None))
    return {"poses": len(sequence), "saved": str(path)}


def workspace(cfg: DictConfig, device=None) -> dict:
    """source=files: the corners are in calibrate.poses; source=teleop: jog the arm with the
    configured teleop device, mark a corner with success (enter / a button), finish with failure."""
    c = cfg.calibrate
    recorder = WorkspaceRecorder()
    if c.source == "files":
        for pose in read_poses(c.poses):
            recorder.mark(pose[:3])
    elif c.source == "teleop":
        _jog_and_mark(cfg, recorder, device)
    else:
        raise CalibrationError(f"workspace needs source=files or source=teleop, got {c.source!r}")
    low, high = recorder.box(c.margin)
    text = write_safety_yaml(low, high, c.base_limits, c.rig)
    summary = {"corners": len(recorder.points), "low": [round(float(v), 4) for v in low],
               "high": [round(float(v), 4) for v in high]}
    versioned, current = save_result(c.dir, c.rig, "safety", text, summary)
    return {**summary, "saved": str(versioned), "current": str(current),
            "use": f"robot.safety={current}"}


def _jog_and_mark(cfg: DictConfig, recorder: WorkspaceRecorder, device=None) -> None:
    from robot_rl.intervention.factory import make_device
    from robot_rl.intervention.mapping import TeleopMapper, TwistMapping
    from robot_rl.rl.pacing import RatePacer
    from robot_rl.robots import make_env
    from robot_rl.teleop.device import TeleopEvent

    env = make_env(cfg, with_cameras=False)
    device = device or make_device(cfg, env)
    if device is None:
        env.close()
        raise CalibrationError("source=teleop needs a device: teleop=keyboard, spacemouse or gamepad")
    mapper = TeleopMapper(env.action_spec, TwistMapping(cfg.teleop.frame, cfg.teleop.operator_yaw))
    pacer = RatePacer(cfg.robot.control_hz)  # a person jogs at the robot's pace, in sim too
    try:
        env.reset(seed=cfg.seed)
        pacer.reset()
        print("jog the arm to a corner of the workspace and mark it (success); finish with failure")
        while True:
            sample = device.read()
            ee = env.backend.arm.state().ee_pose
            if TeleopEvent.SUCCESS in sample.events:
                recorder.mark(ee[:3])
                print(f"  corner {len(recorder.points)}: {np.round(ee[:3], 4).tolist()}")
            if TeleopEvent.FAILURE in sample.events:
                return
            env.step(mapper.action(sample, ee[3:]))
            pacer.wait()
    finally:
        env.close()


PROCEDURES = {"intrinsics": intrinsics, "handeye": handeye, "poses": poses, "workspace": workspace}


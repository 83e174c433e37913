"""ROS ``camera_info`` YAML files (camera_calibration_parsers' format): the intrinsics a
calibration writes and a camera driver loads in place of its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from robot_rl.drivers.base import CameraInfo


class CameraInfoError(ValueError):
    """A camera_info file that is missing or does not hold a camera_info."""


def camera_info_yaml(info: CameraInfo) -> str:
    """The ROS ``camera_info`` YAML (camera_calibration_parsers' format)."""
    k = info.k
    p = np.hstack([k, np.zeros((3, 1))])

    def matrix(rows: int, cols: int, data) -> dict:
        return {"rows": rows, "cols": cols, "data": [float(v) for v in np.asarray(data).reshape(-1)]}

    return yaml.safe_dump({
        "image_width": info.width, "image_height": info.height, "camera_name": info.frame_id,
        "camera_matrix": matrix(3, 3, k), "distortion_model": "plumb_bob",
        "distortion_coefficients": matrix(1, len(info.distortion), info.distortion),
        "rectification_matrix": matrix(3, 3, np.eye(3)), "projection_matrix": matrix(3, 4, p),
    }, sort_keys=False)


def load_camera_info(path: str | Path) -> CameraInfo:
    """A ROS ``camera_info`` YAML as CameraInfo; a missing or malformed file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CameraInfoError(f"no camera_info file {str(path)!r}")
    try:
        data = yaml.safe_load(path.read_text())
        k = np.asarray(data["camera_matrix"]["data"], dtype=float).reshape(3, 3)
        dist = tuple(float(v) for v in data["distortion_coefficients"]["data"])
        return CameraInfo(int(data["image_width"]), int(data["image_height"]), float(k[0, 0]), float(k[1, 1]),
                          float(k[0, 2]), float(k[1, 2]), str(data.get("camera_name", path.stem)), dist)
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as e:
        raise CameraInfoError(f"{path}: not a camera_info YAML ({type(e).__name__}: {e})") from None

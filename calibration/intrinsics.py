"""Camera intrinsics from views of a calibration board (OpenCV's calibrateCamera), saved as
the ROS ``camera_info`` YAML that camera_node and the drivers load.

Views are screened the way ROS's camera_calibration does: each view is summarised by where
the board sits in the image, how large it looks and how skewed it is, and a view that is
too close to one already kept adds little and is dropped. Then the calibration is solved,
and views whose reprojection error stands far above the rest are dropped and it is solved
again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from robot_rl.calibration.board import Board, CalibrationError, Detection
from robot_rl.drivers.base import CameraInfo

MIN_VIEWS = 8


@dataclass
class IntrinsicsResult:
    k: np.ndarray
    dist: np.ndarray
    image_size: tuple[int, int]  # (width, height)
    rms: float  # pixels, over the views used
    view_errors: list[float]  # pixels, per used view
    used: list[int]  # indices into the images given
    rejected: dict[int, str] = field(default_factory=dict)  # index → why

    def camera_info(self, name: str) -> CameraInfo:
        k = self.k
        return CameraInfo(self.image_size[0], self.image_size[1], float(k[0, 0]), float(k[1, 1]), float(k[0, 2]),
                          float(k[1, 2]), name, tuple(float(d) for d in self.dist.reshape(-1)))


def view_params(detection: Detection, image_size: tuple[int, int]) -> np.ndarray:
    """(x, y, size, skew) of a view, each in [0, 1], as ROS camera_calibration measures them."""
    pts = detection.image_points.astype(np.float32)
    w, h = image_size
    area = cv2.contourArea(cv2.convexHull(pts))
    x, y = pts[:, 0].mean() / w, pts[:, 1].mean() / h
    size = np.sqrt(area / (w * h))
    rw, rh = cv2.minAreaRect(pts)[1]
    skew = max(0.0, 1.0 - area / (rw * rh)) if rw * rh > 0 else 0.0
    return np.array([x, y, size, min(2 * skew, 1.0)])


def calibrate_intrinsics(board: Board, images: list[np.ndarray], min_views: int = MIN_VIEWS,
                         novelty: float = 0.05, outlier_factor: float = 3.0) -> IntrinsicsResult:
    """Intrinsics from ``images`` (uint8 grey or RGB, all of one size) of ``board``."""
    if not images:
        raise CalibrationError("no images to calibrate from")
    sizes = {img.shape[:2] for img in images}
    if len(sizes) != 1:
        raise CalibrationError(f"all images must have one size, got {sorted(sizes)}")
    h, w = sizes.pop()
    image_size = (w, h)
    rejected: dict[int, str] = {}
    kept: list[tuple[int, Detection, np.ndarray]] = []
    for i, image in enumerate(images):
        detection = board.detect(image)
        if detection is None:
            rejected[i] = "board not found"
            continue
        params = view_params(detection, image_size)
        if kept and min(np.linalg.norm(params - p) for _, _, p in kept) < novelty:
            rejected[i] = "adds little (too close to a view already kept)"
            continue
        kept.append((i, detection, params))
    if len(kept) < min_views:
        found = sum(1 for r in rejected.values() if r != "board not found") + len(kept)
        raise CalibrationError(f"too few usable views: {len(kept)} of {len(images)} (board found in {found}); "
                               f"intrinsics need ≥ {min_views} views of the board at different places, "
                               f"distances and tilts")
    while True:
        result = _solve(kept, image_size)
        errors = np.array(result[2])
        worst = int(np.argmax(errors))
        if len(kept) <= min_views or errors[worst] <= outlier_factor * np.median(errors):
            break
        rejected[kept[worst][0]] = f"reprojection error {errors[worst]:.2f} px, far above the others"
        kept.pop(worst)
    rms, (k, dist), view_errors = result
    return IntrinsicsResult(k, dist, image_size, rms, list(map(float, view_errors)), [i for i, _, _ in kept],
                            dict(sorted(rejected.items())))


def _solve(kept: list[tuple[int, Detection, np.ndarray]], image_size: tuple[int, int]):
    obj = [d.object_points for _, d, _ in kept]
    img = [d.image_points for _, d, _ in kept]
    rms, k, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, image_size, None, None)
    errors = []
    for o, i, r, t in zip(obj, img, rvecs, tvecs, strict=True):
        projected, _ = cv2.projectPoints(o, r, t, k, dist)
        errors.append(float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - i) ** 2, axis=1)))))
    return float(rms), (k, dist.reshape(-1)), errors

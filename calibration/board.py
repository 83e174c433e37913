"""Calibration targets: ChArUco boards (the default: partly occluded views still count) and
plain checkerboards, their detection in images, and the board's pose in a camera."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class CalibrationError(ValueError):
    """Data that cannot give a calibration: too few views, no board, degenerate poses."""


@dataclass(frozen=True)
class BoardSpec:
    """``squares`` (columns, rows) of ``square`` metres; ChArUco markers of ``marker`` metres."""

    kind: str = "charuco"  # charuco | checkerboard
    squares: tuple[int, int] = (7, 5)
    square: float = 0.04
    marker: float = 0.03
    dictionary: str = "DICT_5X5_100"

    def __post_init__(self) -> None:
        if self.kind not in ("charuco", "checkerboard"):
            raise CalibrationError(f"board kind must be 'charuco' or 'checkerboard', got {self.kind!r}")
        if min(self.squares) < 3 or self.square <= 0 or (self.kind == "charuco" and not 0 < self.marker < self.square):
            raise CalibrationError(f"board needs ≥ 3×3 squares of size > 0 and 0 < marker < square: {self}")
        if self.kind == "charuco" and not hasattr(cv2.aruco, self.dictionary):
            raise CalibrationError(f"unknown ArUco dictionary {self.dictionary!r}")

    @property
    def size_m(self) -> tuple[float, float]:
        return self.squares[0] * self.square, self.squares[1] * self.square


@dataclass(frozen=True)
class Detection:
    """Board corners seen in one image: 3D points on the board (z = 0) and their pixels."""

    object_points: np.ndarray  # (N, 3) float32, metres, board frame
    image_points: np.ndarray  # (N, 2) float32, pixels

    def __len__(self) -> int:
        return len(self.object_points)


class Board:
    def __init__(self, spec: BoardSpec = BoardSpec()):
        self.spec = spec
        if spec.kind == "charuco":
            dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, spec.dictionary))
            self.charuco = cv2.aruco.CharucoBoard(spec.squares, spec.square, spec.marker, dictionary)
            self._detector = cv2.aruco.CharucoDetector(self.charuco)
        inner = (spec.squares[0] - 1, spec.squares[1] - 1)
        self.inner_corners = inner
        grid = np.mgrid[1 : inner[0] + 1, 1 : inner[1] + 1].T.reshape(-1, 2) * spec.square
        self._checker_points = np.hstack([grid, np.zeros((len(grid), 1))]).astype(np.float32)

    @property
    def min_corners(self) -> int:
        """Corners a view needs to give a pose that can be trusted."""
        return 6 if self.spec.kind == "charuco" else len(self._checker_points)

    def image(self, pixels_per_metre: float) -> np.ndarray:
        """The board as a grey image with no margin: pixel (u, v) is board point (u, v) / pixels_per_metre."""
        w, h = (round(s * pixels_per_metre) for s in self.spec.size_m)
        if self.spec.kind == "charuco":
            return self.charuco.generateImage((w, h), marginSize=0)
        cells = (np.indices((h, w)) / (self.spec.square * pixels_per_metre)).astype(int)
        return np.where((cells[0] + cells[1]) % 2 == 0, 0, 255).astype(np.uint8)

    def detect(self, image: np.ndarray) -> Detection | None:
        """The board's corners in ``image`` (uint8 grey or RGB), refined to sub-pixel; None when not found."""
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if self.spec.kind == "charuco":
            corners, ids, _, _ = self._detector.detectBoard(grey)
            if corners is None or len(corners) < self.min_corners:
                return None
            obj, img = self.charuco.matchImagePoints(corners, ids)
            return Detection(obj.reshape(-1, 3).astype(np.float32), img.reshape(-1, 2).astype(np.float32))
        found, corners = cv2.findChessboardCorners(grey, self.inner_corners,
                                                   cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
        if not found:
            return None
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)
        corners = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)
        return Detection(self._checker_points.copy(), corners.reshape(-1, 2).astype(np.float32))

    def pose(self, detection: Detection, k: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """The board's pose in the camera (4×4, metres): T_cam_board."""
        if len(detection) < 4:
            raise CalibrationError(f"a board pose needs ≥ 4 corners, got {len(detection)}")
        ok, rvec, tvec = cv2.solvePnP(detection.object_points, detection.image_points, k, dist,
                                      flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            raise CalibrationError("solvePnP found no board pose")
        rvec, tvec = cv2.solvePnPRefineLM(detection.object_points, detection.image_points, k, dist, rvec, tvec)
        return to_matrix(cv2.Rodrigues(rvec)[0], tvec.reshape(3))


def to_matrix(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = rotation, np.asarray(translation).reshape(3)
    return t


def invert(t: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = t[:3, :3].T
    out[:3, 3] = -t[:3, :3].T @ t[:3, 3]
    return out


def render_view(board: Board, k: np.ndarray, t_cam_board: np.ndarray, size: tuple[int, int],
                rng: np.random.Generator | None = None, noise: float = 2.0, pixels_per_metre: float = 6000.0,
                background: int = 200) -> np.ndarray:
    """A synthetic grey image of ``board`` seen by a pinhole camera ``k`` from ``t_cam_board``
    (no distortion), with Gaussian pixel noise: OpenCV draws the board, a homography projects it."""
    pattern = board.image(pixels_per_metre)
    scale = np.diag([1 / pixels_per_metre, 1 / pixels_per_metre, 1.0])
    h = k @ np.column_stack([t_cam_board[:3, 0], t_cam_board[:3, 1], t_cam_board[:3, 3]]) @ scale
    image = cv2.warpPerspective(pattern, h, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=background)
    # the board has a white margin around it in real life; pixels outside it stay background
    mask = cv2.warpPerspective(np.full_like(pattern, 255), h, size, flags=cv2.INTER_NEAREST)
    image = np.where(mask > 0, image, background).astype(np.float64)
    if rng is not None and noise > 0:
        image += rng.normal(0, noise, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)

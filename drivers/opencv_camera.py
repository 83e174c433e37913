"""OpenCV / UVC cameras (webcams, capture cards, a video file for replay).

Frames are stamped when ``read`` returns them, the best OpenCV offers; a camera that stops
delivering is reopened once per read and otherwise reported in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from robot_rl.drivers.base import Camera, CameraInfo, DriverError, Frame

log = logging.getLogger("robot_rl.drivers")


class OpenCVCamera(Camera):
    def __init__(self, name: str, device: int | str = 0, width: int = 640, height: int = 480, fps: float = 30.0,
                 info: CameraInfo | None = None, open_capture: Callable[[int | str], Any] | None = None,
                 clock: Callable[[], float] = time.time):
        self.name, self.device, self.clock = name, device, clock
        self._open = open_capture or cv2.VideoCapture
        self._size, self._fps = (width, height), fps
        self._info = info
        self._cap = self._connect()

    def _connect(self) -> Any:
        cap = self._open(self.device)
        if not cap.isOpened():
            raise DriverError(f"camera {self.name!r}: OpenCV could not open device {self.device!r}")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        cap.set(cv2.CAP_PROP_FPS, self._fps)
        return cap

    def read(self) -> Frame:
        ok, image = self._cap.read()
        if not ok:
            log.warning("camera %r: no frame from %r, reopening", self.name, self.device)
            self._cap.release()
            self._cap = self._connect()
            ok, image = self._cap.read()
            if not ok:
                raise DriverError(f"camera {self.name!r}: device {self.device!r} delivers no frames")
        stamp = self.clock()
        if image.ndim != 3 or image.shape[2] != 3:
            raise DriverError(f"camera {self.name!r}: expected a colour image, got shape {image.shape}")
        return Frame(np.ascontiguousarray(image[:, :, ::-1]), stamp)  # BGR → RGB

    def info(self) -> CameraInfo:
        """Intrinsics from calibration (``info=``); without them, a guess from the image size."""
        if self._info is not None:
            return self._info
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or self._size[0]
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or self._size[1]
        f = float(max(width, height))  # ~53° field of view: uncalibrated
        return CameraInfo(width, height, f, f, (width - 1) / 2, (height - 1) / 2, self.name)

    def close(self) -> None:
        self._cap.release()

"""Intel RealSense cameras through pyrealsense2 (needs Debian's libusb-1.0-0).

Chosen by serial number; colour at a fixed resolution and rate, optionally a fixed
exposure and depth aligned to the colour image. Frames carry the device's global-time
stamp (host clock). A device that drops off the bus is restarted once per read; if it
is still gone, ``read`` raises one line naming the serial.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from robot_rl.drivers.base import Camera, CameraInfo, DriverError, Frame, import_sdk

log = logging.getLogger("robot_rl.drivers")


class RealSenseCamera(Camera):
    def __init__(self, name: str, serial: str | None = None, width: int = 640, height: int = 480, fps: int = 30,
                 exposure_us: float | None = None, depth: bool = False, timeout_ms: int = 1000,
                 info: CameraInfo | None = None, sdk: Any = None):
        self.rs = sdk if sdk is not None else import_sdk("pyrealsense2", "pip install pyrealsense2", "realsense")
        self.name, self.width, self.height, self.fps = name, width, height, fps
        self.exposure_us, self.depth, self.timeout_ms = exposure_us, depth, timeout_ms
        self.serial = self._pick(serial)
        self._pipeline, self._profile = self._start()
        self._align = self.rs.align(self.rs.stream.color) if depth else None
        self._depth_image: np.ndarray | None = None
        self._info = info  # calibrated intrinsics replace the factory ones

    def _pick(self, serial: str | None) -> str:
        rs = self.rs
        found = [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]
        if not found:
            raise DriverError(f"camera {self.name!r}: no RealSense device is connected")
        if serial is None:
            if len(found) > 1:
                raise DriverError(f"camera {self.name!r}: {len(found)} RealSense devices ({found}); set serial")
            return found[0]
        if serial not in found:
            raise DriverError(f"camera {self.name!r}: no RealSense with serial {serial} (connected: {found})")
        return serial

    def _start(self) -> tuple[Any, Any]:
        rs = self.rs
        pipeline, config = rs.pipeline(), rs.config()
        config.enable_device(self.serial)
        config.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        if self.depth:
            config.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        try:
            profile = pipeline.start(config)
        except RuntimeError as e:
            raise DriverError(f"camera {self.name!r}: RealSense {self.serial} would not start "
                              f"{self.width}×{self.height}@{self.fps}: {e}") from None
        sensor = profile.get_device().first_color_sensor()
        sensor.set_option(rs.option.global_time_enabled, 1)
        if self.exposure_us is not None:
            sensor.set_option(rs.option.enable_auto_exposure, 0)
            sensor.set_option(rs.option.exposure, float(self.exposure_us))
        return pipeline, profile

    def read(self) -> Frame:
        try:
            frames = self._pipeline.wait_for_frames(self.timeout_ms)
        except RuntimeError as e:
            log.warning("camera %r: RealSense %s dropped (%s); restarting it", self.name, self.serial, e)
            self._restart()
            try:
                frames = self._pipeline.wait_for_frames(self.timeout_ms)
            except RuntimeError as e2:
                raise DriverError(f"camera {self.name!r}: RealSense {self.serial} is gone: {e2}") from None
        if self._align is not None:
            frames = self._align.process(frames)
            depth = frames.get_depth_frame()
            self._depth_image = np.asanyarray(depth.get_data()).copy() if depth else None
        color = frames.get_color_frame()
        image = np.asanyarray(color.get_data()).copy()
        return Frame(image, color.get_timestamp() / 1000.0)

    def read_depth(self) -> np.ndarray:
        """The depth (uint16, in ``depth_scale`` metres) aligned to the last colour frame."""
        if not self.depth:
            raise DriverError(f"camera {self.name!r}: depth is off (depth=True turns it on)")
        if self._depth_image is None:
            raise DriverError(f"camera {self.name!r}: no depth frame yet; call read() first")
        return self._depth_image

    @property
    def depth_scale(self) -> float:
        return float(self._profile.get_device().first_depth_sensor().get_depth_scale())

    def _restart(self) -> None:
        try:
            self._pipeline.stop()
        except RuntimeError:
            pass
        self._pick(self.serial)  # raises the clear line if it is no longer on the bus
        self._pipeline, self._profile = self._start()

    def info(self) -> CameraInfo:
        if self._info is not None:
            return self._info
        intr = self._profile.get_stream(self.rs.stream.color).as_video_stream_profile().get_intrinsics()
        return CameraInfo(intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy, self.name,
                          tuple(float(c) for c in intr.coeffs))

    def close(self) -> None:
        self._pipeline.stop()

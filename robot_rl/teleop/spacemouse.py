"""3Dconnexion SpaceMouse over raw HID (hidapi), for 6-DoF teleoperation.

The device sends little-endian int16 axis reports: report 1 carries translation (and on
newer models rotation too, in 12 bytes), report 2 rotation, report 3 the button bitmask.
Axes arrive in the device's HID frame (x right, y towards the user, z down); samples are
given in the operator's frame (x right, y away from the operator, z up). A reader thread
keeps the newest state; an unplugged device is reported once and reopened when it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample

log = logging.getLogger("robot_rl.teleop")

VENDOR_3DCONNEXION = (0x046D, 0x256F)  # Logitech-era and current 3Dconnexion vendor ids
FULL_SCALE = 350.0  # axis counts at full deflection
HID_TO_OPERATOR = np.array([1.0, -1.0, -1.0, 1.0, -1.0, -1.0])


@dataclass
class SpaceMouseState:
    axes: np.ndarray = field(default_factory=lambda: np.zeros(6))  # raw counts, HID frame
    buttons: int = 0


def apply_report(state: SpaceMouseState, report: bytes) -> SpaceMouseState:
    """Fold one HID report into ``state``; unknown or short reports are ignored."""
    if not report:
        return state
    kind, payload = report[0], bytes(report[1:])
    if kind == 1 and len(payload) >= 6:
        values = np.frombuffer(payload[: 12 if len(payload) >= 12 else 6], dtype="<i2").astype(float)
        state.axes[: len(values)] = values
    elif kind == 2 and len(payload) >= 6:
        state.axes[3:] = np.frombuffer(payload[:6], dtype="<i2").astype(float)
    elif kind == 3 and payload:
        state.buttons = int.from_bytes(payload[:2].ljust(2, b"\0"), "little")
    return state


@dataclass(frozen=True)
class SpaceMouseConfig:
    deadzone: float = 0.1  # fraction of full scale ignored around rest
    scale: float = 1.0
    gripper_button: int = 0  # toggles close/open
    intervene_button: int = 1  # held: the operator takes over


class SpaceMouse(TeleopDevice):
    """A SpaceMouse read through ``open_device`` (``hid.device`` by default; tests pass a double)."""

    def __init__(self, config: SpaceMouseConfig = SpaceMouseConfig(),
                 open_device: Callable[[], object] | None = None, retry_s: float = 1.0):
        self.config = config
        self._open_device = open_device or _open_hid
        self._retry_s = retry_s
        self._state = SpaceMouseState()
        self._lock = threading.Lock()
        self._gripper_closed = False
        self._pending: set[TeleopEvent] = set()
        self._gripper_changed = False
        self.connected = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spacemouse", daemon=True)
        self._thread.start()

    def read(self) -> TeleopSample:
        with self._lock:
            axes, buttons = self._state.axes.copy(), self._state.buttons
            events, self._pending = frozenset(self._pending), set()
            gripper = (1.0 if self._gripper_closed else -1.0) if self._gripper_changed else None
            self._gripper_changed = False
        twist = np.clip(axes * HID_TO_OPERATOR / FULL_SCALE, -1.0, 1.0)
        twist[np.abs(twist) < self.config.deadzone] = 0.0
        if buttons & (1 << self.config.intervene_button):
            events = events | {TeleopEvent.INTERVENE}
        return TeleopSample(twist * self.config.scale, gripper, events, time.monotonic())

    def _run(self) -> None:
        device, announced = None, False
        while not self._stop.is_set():
            if device is None:
                try:
                    device = self._open_device()
                    self.connected, announced = True, False
                    log.info("SpaceMouse connected")
                except OSError as e:
                    if not announced:
                        log.warning("SpaceMouse not available (%s); plug it in, retrying every %.0f s", e,
                                    self._retry_s)
                        announced = True
                    self._stop.wait(self._retry_s)
                    continue
            try:
                report = device.read(64, 50)  # up to 50 ms, so close() is prompt
            except OSError as e:
                log.warning("SpaceMouse disconnected (%s); the arm gets no SpaceMouse motion until it is back", e)
                with self._lock:
                    self._state = SpaceMouseState()  # never keep moving on a stale deflection
                self.connected, device = False, None
                continue
            if report:
                self._fold(bytes(report))

    def _fold(self, report: bytes) -> None:
        with self._lock:
            before = self._state.buttons
            apply_report(self._state, report)
            pressed = self._state.buttons & ~before
            if pressed & (1 << self.config.gripper_button):
                self._gripper_closed = not self._gripper_closed
                self._gripper_changed = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _open_hid() -> object:
    try:
        import hid
    except ImportError as e:  # pragma: no cover - hidapi is a dependency
        raise OSError("the hidapi package is not installed") from e
    for info in hid.enumerate():
        if info["vendor_id"] in VENDOR_3DCONNEXION:
            device = hid.device()
            device.open_path(info["path"])
            return device
    raise OSError("no 3Dconnexion device found (is it plugged in, and readable by this user?)")

"""A gamepad through the Linux joystick interface (/dev/input/js*): no extra dependency.

Each event is 8 bytes: time (u32, ms), value (s16), type (u8: 1 button, 2 axis, 0x80 the
initial-state flag) and number (u8). Default layout (an Xbox-style pad; indices configurable):
left stick → x/y, right stick vertical → z, right stick horizontal → yaw; A toggles the
gripper, B held = intervene, Start success, Back failure, X reset, Y pause.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample

log = logging.getLogger("robot_rl.teleop")

EVENT = struct.Struct("<IhBB")
JS_BUTTON, JS_AXIS, JS_INIT = 0x01, 0x02, 0x80


@dataclass(frozen=True)
class GamepadConfig:
    path: str = "/dev/input/js0"
    deadzone: float = 0.15
    # twist component → (axis number, sign); stick up reads negative on most pads
    axes: dict[int, tuple[int, float]] = field(default_factory=lambda: {0: (1, -1.0), 1: (0, -1.0), 2: (4, -1.0),
                                                                        5: (3, -1.0)})
    gripper_button: int = 0
    intervene_button: int = 1
    event_buttons: dict[int, TeleopEvent] = field(default_factory=lambda: {
        7: TeleopEvent.SUCCESS, 6: TeleopEvent.FAILURE, 2: TeleopEvent.RESET, 3: TeleopEvent.PAUSE})


class Gamepad(TeleopDevice):
    def __init__(self, config: GamepadConfig = GamepadConfig(),
                 open_device: Callable[[], BinaryIO] | None = None, retry_s: float = 1.0):
        self.config = config
        self._open = open_device or (lambda: open(config.path, "rb", buffering=0))
        self._retry_s = retry_s
        self._axes: dict[int, float] = {}
        self._buttons: dict[int, bool] = {}
        self._events: set[TeleopEvent] = set()
        self._gripper_closed = False
        self._gripper_changed = False
        self._lock = threading.Lock()
        self.connected = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gamepad", daemon=True)
        self._thread.start()

    def read(self) -> TeleopSample:
        twist = np.zeros(6)
        with self._lock:
            for component, (axis, sign) in self.config.axes.items():
                twist[component] = sign * self._axes.get(axis, 0.0)
            events, self._events = frozenset(self._events), set()
            if self._buttons.get(self.config.intervene_button):
                events = events | {TeleopEvent.INTERVENE}
            gripper = (1.0 if self._gripper_closed else -1.0) if self._gripper_changed else None
            self._gripper_changed = False
        twist[np.abs(twist) < self.config.deadzone] = 0.0
        return TeleopSample(np.clip(twist, -1.0, 1.0), gripper, events, time.monotonic())

    def apply(self, raw: bytes) -> None:
        """Fold one 8-byte joystick event into the state."""
        _, value, kind, number = EVENT.unpack(raw)
        initial = bool(kind & JS_INIT)
        kind &= ~JS_INIT
        with self._lock:
            if kind == JS_AXIS:
                self._axes[number] = value / 32767.0
            elif kind == JS_BUTTON:
                pressed = value != 0
                was = self._buttons.get(number, False)
                self._buttons[number] = pressed
                if pressed and not was and not initial:
                    if number == self.config.gripper_button:
                        self._gripper_closed, self._gripper_changed = not self._gripper_closed, True
                    elif number in self.config.event_buttons:
                        self._events.add(self.config.event_buttons[number])

    def _run(self) -> None:
        device, announced = None, False
        while not self._stop.is_set():
            if device is None:
                try:
                    device = self._open()
                    self.connected, announced = True, False
                except OSError as e:
                    if not announced:
                        log.warning("gamepad %s not available (%s); retrying every %.0f s", self.config.path, e,
                                    self._retry_s)
                        announced = True
                    self._stop.wait(self._retry_s)
                    continue
            try:
                raw = device.read(EVENT.size)
                if not raw:
                    raise OSError("end of stream")
            except OSError as e:
                log.warning("gamepad disconnected (%s); it sends no motion until it is back", e)
                with self._lock:
                    self._axes.clear()
                    self._buttons.clear()
                self.connected, device = False, None
                continue
            if len(raw) == EVENT.size:
                self.apply(raw)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=0.5)


def joystick_event(kind: int, number: int, value: int, stamp_ms: int = 0) -> bytes:
    """One raw joystick event, as the kernel writes it (for test doubles and tools)."""
    return EVENT.pack(stamp_ms, value, kind, number)




"""Keyboard teleoperation through pynput: held keys move the arm, single presses send events.

Needs a display (X11) or, on Linux, uinput; with no display set PYNPUT_BACKEND=dummy and the
device reads as idle. Default bindings (all configurable):

    w/s  +x/−x      a/d  +y/−y      r/f  +z/−z          (operator frame)
    i/k  ±pitch     j/l  ±roll      u/o  ±yaw
    space  toggle gripper     t  toggle intervention     enter  success
    backspace  failure        n  reset                    p  pause     esc  e-stop
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample

DEFAULT_MOTION = {
    "w": (0, 1.0), "s": (0, -1.0), "a": (1, 1.0), "d": (1, -1.0), "r": (2, 1.0), "f": (2, -1.0),
    "j": (3, 1.0), "l": (3, -1.0), "i": (4, 1.0), "k": (4, -1.0), "u": (5, 1.0), "o": (5, -1.0),
}
DEFAULT_EVENTS = {
    "enter": TeleopEvent.SUCCESS, "backspace": TeleopEvent.FAILURE, "n": TeleopEvent.RESET,
    "p": TeleopEvent.PAUSE, "esc": TeleopEvent.ESTOP,
}


@dataclass(frozen=True)
class KeyboardConfig:
    motion: Mapping[str, tuple[int, float]] = field(default_factory=lambda: dict(DEFAULT_MOTION))
    events: Mapping[str, TeleopEvent] = field(default_factory=lambda: dict(DEFAULT_EVENTS))
    gripper_key: str = "space"
    intervene_key: str = "t"
    speed: float = 1.0  # twist magnitude of a held key


def key_name(key: object) -> str | None:
    """pynput's Key (a named key: 'space', 'esc') or KeyCode (a character: 'w') as a plain name."""
    if isinstance(key, Enum):
        return key.name.lower()
    char = getattr(key, "char", None)
    return char.lower() if char else None


class Keyboard(TeleopDevice):
    def __init__(self, config: KeyboardConfig = KeyboardConfig(), listener_factory=None):
        self.config = config
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._events: set[TeleopEvent] = set()
        self._gripper_closed = False
        self._gripper_changed = False
        self._intervening = False
        if listener_factory is None:
            from pynput import keyboard

            listener_factory = keyboard.Listener
        self._listener = listener_factory(on_press=self.press, on_release=self.release)
        self._listener.start()

    def press(self, key: object, injected: bool = False) -> None:
        name = key_name(key)
        if name is None:
            return
        with self._lock:
            if name in self._held:  # auto-repeat
                return
            self._held.add(name)
            if name == self.config.gripper_key:
                self._gripper_closed, self._gripper_changed = not self._gripper_closed, True
            elif name == self.config.intervene_key:
                self._intervening = not self._intervening
            elif name in self.config.events:
                self._events.add(self.config.events[name])

    def release(self, key: object, injected: bool = False) -> None:
        name = key_name(key)
        with self._lock:
            self._held.discard(name)

    def read(self) -> TeleopSample:
        twist = np.zeros(6)
        with self._lock:
            for name in self._held:
                if name in self.config.motion:
                    axis, sign = self.config.motion[name]
                    twist[axis] += sign * self.config.speed
            events, self._events = frozenset(self._events), set()
            if self._intervening:
                events = events | {TeleopEvent.INTERVENE}
            gripper = (1.0 if self._gripper_closed else -1.0) if self._gripper_changed else None
            self._gripper_changed = False
        return TeleopSample(np.clip(twist, -1.0, 1.0), gripper, events, time.monotonic())

    def close(self) -> None:
        self._listener.stop()

"""Teleop devices and the mapping of a push to the arm's motion."""

import os
import shutil
import subprocess
import sys
import threading
import time
from enum import Enum

import numpy as np
import pytest

from robot_rl.env.robot_env import ActionSpec
from robot_rl.intervention.mapping import TeleopMapper, TwistMapping
from robot_rl.teleop.device import TeleopEvent, TeleopSample
from robot_rl.teleop.keyboard import Keyboard
from robot_rl.teleop.spacemouse import SpaceMouse, SpaceMouseConfig


# ---------------------------------------------------------------------- SpaceMouse
class SpaceMouseDouble:
    """Test double of a hidapi device: plays raw HID reports, then can be unplugged."""

    def __init__(self, reports):
        self.reports = list(reports)
        self.unplugged = threading.Event()

    def read(self, size, timeout_ms):
        if self.unplugged.is_set():
            raise OSError("read error (device disconnected)")
        if self.reports:
            return list(self.reports.pop(0))
        time.sleep(timeout_ms / 1000)
        return []


def report(kind: int, *values: int) -> bytes:
    return bytes([kind]) + np.array(values, dtype="<i2").tobytes()


def wait_until(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_spacemouse_parses_translation_rotation_and_buttons():
    double = SpaceMouseDouble([report(1, 350, -175, 0), report(2, 0, 0, 350), bytes([3, 0b01, 0])])
    mouse = SpaceMouse(SpaceMouseConfig(deadzone=0.1), open_device=lambda: double)
    try:
        wait_until(lambda: not double.reports)
        time.sleep(0.1)
        sample = mouse.read()
        # HID: x right, y towards the user, z down → operator: x right, y away, z up
        np.testing.assert_allclose(sample.twist, [1.0, 0.5, 0.0, 0.0, 0.0, -1.0])
        assert sample.gripper == 1.0  # button 0 pressed: close
        assert mouse.read().gripper is None  # reported once
    finally:
        mouse.close()


def test_spacemouse_newer_12_byte_reports_and_deadzone():
    double = SpaceMouseDouble([report(1, 20, 0, -350, 350, 0, 0)])
    mouse = SpaceMouse(SpaceMouseConfig(deadzone=0.1), open_device=lambda: double)
    try:
        wait_until(lambda: not double.reports)
        time.sleep(0.1)
        np.testing.assert_allclose(mouse.read().twist, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0])  # 20/350 < deadzone
    finally:
        mouse.close()


def test_spacemouse_unplug_stops_motion_and_replug_reconnects(caplog):
    first = SpaceMouseDouble([report(1, 350, 0, 0)])
    second = SpaceMouseDouble([report(1, 0, 350, 0)])
    plugged = [first]

    def open_device():
        if not plugged:
            raise OSError("no 3Dconnexion device found")
        return plugged.pop(0)

    mouse = SpaceMouse(open_device=open_device, retry_s=0.05)
    try:
        wait_until(lambda: mouse.read().twist[0] == 1.0)
        first.unplugged.set()
        wait_until(lambda: not mouse.connected)
        assert not mouse.read().deflected()  # a stale deflection never keeps the arm moving
        assert "disconnected" in caplog.text
        plugged.append(second)
        wait_until(lambda: mouse.connected and mouse.read().twist[1] == -1.0)
    finally:
        mouse.close()


# ---------------------------------------------------------------------- keyboard
class NoListener:
    def __init__(self, on_press, on_release):
        self.on_press, self.on_release = on_press, on_release

    def start(self):
        pass

    def stop(self):
        pass


class Key(Enum):
    """Named keys as pynput gives them (its no-display backend aliases them all, so tests name their own)."""

    space = 1
    enter = 2


def test_keyboard_held_keys_move_and_presses_are_events():
    from pynput.keyboard import KeyCode

    kb = Keyboard(listener_factory=NoListener)
    kb.press(KeyCode.from_char("w"))
    kb.press(KeyCode.from_char("r"))
    kb.press(Key.space)
    kb.press(Key.enter)
    sample = kb.read()
    np.testing.assert_allclose(sample.twist, [1, 0, 1, 0, 0, 0])
    assert sample.gripper == 1.0 and sample.events == {TeleopEvent.SUCCESS}
    kb.release(KeyCode.from_char("w"))
    again = kb.read()
    np.testing.assert_allclose(again.twist, [0, 0, 1, 0, 0, 0])
    assert again.gripper is None and not again.events


@pytest.fixture
def xvfb_display():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb)")
    display = f":{90 + os.getpid() % 50}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "320x240x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    yield display
    server.terminate()
    server.wait()


def test_keyboard_through_pynput_event_injection(xvfb_display):
    """Real X events: pynput's Controller injects them, the device's Listener receives them."""
    script = f"""
import os, time
os.environ["DISPLAY"] = "{xvfb_display}"
os.environ["PYNPUT_BACKEND"] = "xorg"
from pynput.keyboard import Controller, Key
from robot_rl.teleop.keyboard import Keyboard
kb = Keyboard()
kb._listener.wait()
c = Controller()
c.press("a"); c.press(Key.esc); time.sleep(0.3)
s = kb.read()
print(s.twist.tolist(), sorted(e.value for e in s.events))
c.release("a"); c.release(Key.esc); time.sleep(0.3)
print(kb.read().twist.tolist())
kb.close()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    pressed, released = out.stdout.strip().splitlines()
    assert pressed.startswith("[0.0, 1.0, 0.0") and "estop" in pressed
    assert released.startswith("[0.0, 0.0, 0.0")


# ---------------------------------------------------------------------- frames
@pytest.mark.parametrize(
    ("mapping", "push", "moves"),
    [
        (TwistMapping("base"), [1, 0, 0], [1, 0, 0]),  # operator behind the robot: push +x, EE +x
        (TwistMapping("base", operator_yaw=np.pi), [1, 0, 0], [-1, 0, 0]),  # across the table
        (TwistMapping("base", operator_yaw=np.pi / 2), [1, 0, 0], [0, 1, 0]),
        (TwistMapping("ee"), [0, 1, 0], [0, -1, 0]),  # gripper pointing down: its y is the base's −y
        (TwistMapping("ee"), [0, 0, 1], [0, 0, -1]),  # and its z (the approach axis) points down
    ],
)
def test_a_push_moves_the_arm_the_way_it_was_pushed(make_sim_env, mapping, push, moves):
    env = make_sim_env("task=reach", with_cameras=False)
    env.reset(seed=0)
    mapper = TeleopMapper(env.action_spec, mapping)
    start = env.backend.sim.ee_pose().pos
    for _ in range(4):
        sample = TeleopSample(np.array([*push, 0, 0, 0], dtype=float))
        env.step(mapper.action(sample, env.backend.sim.ee_pose().quat))
    moved = env.backend.sim.ee_pose().pos - start
    direction = moved / np.linalg.norm(moved)
    assert np.dot(direction, moves) > 0.95, moved


def test_gripper_command_is_remembered_between_presses():
    mapper = TeleopMapper(ActionSpec(0.02))
    quat = np.array([1.0, 0, 0, 0])
    assert mapper.action(TeleopSample(np.zeros(6)), quat)[-1] == -1.0  # starts open
    assert mapper.action(TeleopSample(np.zeros(6), gripper=1.0), quat)[-1] == 1.0
    assert mapper.action(TeleopSample(np.zeros(6)), quat)[-1] == 1.0  # stays closed
    toggle = TeleopMapper(ActionSpec(0.02, gripper_mode="toggle"))
    assert toggle.action(TeleopSample(np.zeros(6), gripper=1.0), quat)[-1] == 1.0
    assert toggle.action(TeleopSample(np.zeros(6)), quat)[-1] == 0.0  # toggle mode: no press, no change


# ---------------------------------------------------------------------- gamepad
class JoystickDouble:
    """Test double of /dev/input/js0: hands out raw 8-byte events, then blocks until closed."""

    def __init__(self, events):
        self.events = list(events)
        self.closed = threading.Event()

    def read(self, size):
        if self.events:
            return self.events.pop(0)
        self.closed.wait()  # a real device blocks until the next event
        raise OSError("device unplugged")


def test_gamepad_axes_buttons_and_events_from_raw_joystick_events():
    from robot_rl.teleop.gamepad import JS_AXIS, JS_BUTTON, JS_INIT, Gamepad, joystick_event

    events = [
        joystick_event(JS_BUTTON | JS_INIT, 7, 1),  # initial state, not a press
        joystick_event(JS_AXIS, 1, -32767),  # left stick pushed up: +x
        joystick_event(JS_AXIS, 0, 1000),  # inside the deadzone
        joystick_event(JS_BUTTON, 0, 1),  # A: close the gripper
        joystick_event(JS_BUTTON, 1, 1),  # B held: intervene
        joystick_event(JS_BUTTON, 3, 1),  # Y: pause
    ]
    double = JoystickDouble(events)

    def open_device():
        if double.closed.is_set():
            raise OSError("no such device")
        return double

    pad = Gamepad(open_device=open_device, retry_s=0.05)
    try:
        wait_until(lambda: not double.events)
        time.sleep(0.05)
        sample = pad.read()
        np.testing.assert_allclose(sample.twist, [1, 0, 0, 0, 0, 0])
        assert sample.gripper == 1.0
        assert sample.events == {TeleopEvent.INTERVENE, TeleopEvent.PAUSE}
        assert pad.read().events == {TeleopEvent.INTERVENE}  # the held button stays, the press was once
        double.closed.set()  # unplugged: motion stops at once
        wait_until(lambda: not pad.connected)
        assert not pad.read().deflected()
    finally:
        double.closed.set()
        pad.close()

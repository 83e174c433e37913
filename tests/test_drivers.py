"""Real-hardware drivers against test doubles of their vendors' SDK interfaces (named as
such: no camera or arm is attached here). What is tested is the driver's own logic: unit
and frame conversions, device selection, dropped devices, and faults that are surfaced
and never cleared."""

from __future__ import annotations

import types

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_rl.drivers.base import DriverError, import_sdk
from robot_rl.drivers.opencv_camera import OpenCVCamera
from robot_rl.drivers.realsense import RealSenseCamera
from robot_rl.drivers.ur import URArm, quat_pose_to_rotvec, rotvec_pose_to_quat
from robot_rl.drivers.xarm import XArm

DOWN = np.array([0.0, 1.0, 0.0, 0.0])  # gripper pointing down: qw=0, qx=1


def test_a_missing_sdk_is_one_clear_line():
    with pytest.raises(DriverError, match=r"the realsense driver needs the Python module 'no_such_sdk' \(pip"):
        import_sdk("no_such_sdk", "pip install no-such-sdk", "realsense")


# ---------------------------------------------------------------------- OpenCV
class CaptureDouble:
    """A test double of cv2.VideoCapture: yields BGR frames, can run dry."""

    def __init__(self, frames):
        self.frames, self.props, self.released = list(frames), {}, False

    def isOpened(self):
        return True

    def set(self, prop, value):
        self.props[prop] = value

    def get(self, prop):
        return self.props.get(prop, 0)

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self):
        self.released = True


def test_opencv_camera_gives_rgb_and_reopens_a_dry_device():
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 0] = 200  # blue
    opened = []

    def open_capture(device):
        opened.append(CaptureDouble([bgr] if len(opened) < 2 else []))
        return opened[-1]

    cam = OpenCVCamera("front", device=2, width=5, height=4, open_capture=open_capture, clock=lambda: 7.5)
    frame = cam.read()
    assert frame.stamp == 7.5 and frame.image[0, 0].tolist() == [0, 0, 200]  # RGB
    assert opened[0].props[cv2.CAP_PROP_FRAME_WIDTH] == 5
    assert cam.read().image.shape == (4, 5, 3)  # first capture ran dry: reopened, and read from the second
    assert opened[0].released and len(opened) == 2
    with pytest.raises(DriverError, match="camera 'front': device 2 delivers no frames"):
        cam.read()
    assert cam.info().width == 5 and cam.info().frame_id == "front"


def test_opencv_camera_that_does_not_open_is_a_clear_error():
    class Closed(CaptureDouble):
        def isOpened(self):
            return False

    with pytest.raises(DriverError, match="could not open device '/dev/video9'"):
        OpenCVCamera("wrist", device="/dev/video9", open_capture=lambda d: Closed([]))


# ---------------------------------------------------------------------- RealSense
def realsense_double(serials, fail_reads=0, image=None):
    """A test double of the parts of pyrealsense2 the driver calls."""
    state = types.SimpleNamespace(serials=list(serials), fail_reads=fail_reads, options={}, started=[], stopped=0)
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) if image is None else image

    class Device:
        def __init__(self, serial):
            self.serial = serial

        def get_info(self, what):
            assert what == "serial_number"
            return self.serial

        def first_color_sensor(self):
            return types.SimpleNamespace(set_option=lambda o, v: state.options.__setitem__(o, v))

        def first_depth_sensor(self):
            return types.SimpleNamespace(get_depth_scale=lambda: 0.001)

    class VideoFrame:
        def __init__(self, data, stamp_ms):
            self.data, self.stamp_ms = data, stamp_ms

        def get_data(self):
            return self.data

        def get_timestamp(self):
            return self.stamp_ms

        def __bool__(self):
            return True

    class Frames:
        def get_color_frame(self):
            return VideoFrame(image, 1.7e12)

        def get_depth_frame(self):
            return VideoFrame(np.full(image.shape[:2], 500, np.uint16), 1.7e12)

    class Pipeline:
        def start(self, config):
            state.started.append(config.streams)
            profile = types.SimpleNamespace(get_device=lambda: Device(config.device))
            intr = types.SimpleNamespace(width=6, height=4, fx=3.0, fy=3.1, ppx=2.5, ppy=1.5, coeffs=[0.1, 0, 0, 0, 0])
            video = types.SimpleNamespace(get_intrinsics=lambda: intr)
            profile.get_stream = lambda s: types.SimpleNamespace(as_video_stream_profile=lambda: video)
            return profile

        def wait_for_frames(self, timeout_ms):
            if state.fail_reads:
                state.fail_reads -= 1
                raise RuntimeError("Frame didn't arrive within 1000")
            return Frames()

        def stop(self):
            state.stopped += 1

    class Config:
        def __init__(self):
            self.streams, self.device = [], None

        def enable_device(self, serial):
            self.device = serial

        def enable_stream(self, *args):
            self.streams.append(args)

    sdk = types.SimpleNamespace(
        context=lambda: types.SimpleNamespace(query_devices=lambda: [Device(s) for s in state.serials]),
        pipeline=Pipeline, config=Config, align=lambda s: types.SimpleNamespace(process=lambda f: f),
        stream=types.SimpleNamespace(color="color", depth="depth"),
        format=types.SimpleNamespace(rgb8="rgb8", z16="z16"),
        option=types.SimpleNamespace(exposure="exposure", enable_auto_exposure="auto_exposure",
                                     global_time_enabled="global_time"),
        camera_info=types.SimpleNamespace(serial_number="serial_number"),
    )
    return sdk, state


def test_realsense_picks_by_serial_sets_exposure_and_reads_rgb_with_depth():
    sdk, state = realsense_double(["111", "222"])
    cam = RealSenseCamera("front", serial="222", width=6, height=4, fps=30, exposure_us=8000, depth=True, sdk=sdk)
    frame = cam.read()
    assert frame.image.shape == (4, 6, 3) and frame.stamp == pytest.approx(1.7e9)
    assert state.options == {"global_time": 1, "auto_exposure": 0, "exposure": 8000.0}
    assert state.started[0] == [("color", 6, 4, "rgb8", 30), ("depth", 6, 4, "z16", 30)]
    assert cam.read_depth().dtype == np.uint16 and cam.depth_scale == 0.001
    info = cam.info()
    assert (info.fx, info.cy, info.distortion[0], info.frame_id) == (3.0, 1.5, 0.1, "front")


def test_calibrated_intrinsics_replace_the_drivers_own(tmp_path):
    from robot_rl.drivers.base import CameraInfo
    from robot_rl.drivers.camera_info import camera_info_yaml
    from robot_rl.drivers.factory import make_camera

    calibrated = CameraInfo(6, 4, 3.3, 3.4, 2.4, 1.6, "front", (0.05, 0, 0, 0, 0))
    path = tmp_path / "front.yaml"
    path.write_text(camera_info_yaml(calibrated))
    sdk, _ = realsense_double(["111"])
    assert make_camera("realsense", "front", camera_info=str(path), sdk=sdk).info() == calibrated
    with pytest.raises(ValueError, match="unknown camera driver 'gige'"):
        make_camera("gige", "front")


@pytest.mark.parametrize("serials,serial,complaint", [
    ([], None, "no RealSense device is connected"),
    (["111"], "999", r"no RealSense with serial 999 \(connected: \['111'\]\)"),
    (["111", "222"], None, "2 RealSense devices"),
])
def test_realsense_selection_errors(serials, serial, complaint):
    sdk, _ = realsense_double(serials)
    with pytest.raises(DriverError, match=complaint):
        RealSenseCamera("front", serial=serial, sdk=sdk)


def test_realsense_dropped_device_is_restarted_once_then_reported():
    sdk, state = realsense_double(["111"], fail_reads=1)
    cam = RealSenseCamera("wrist", sdk=sdk)
    assert cam.read().image.shape == (4, 6, 3)  # dropped once: restarted
    assert state.stopped == 1 and len(state.started) == 2
    state.fail_reads, state.serials = 1, []  # unplugged for good
    with pytest.raises(DriverError, match="no RealSense device is connected"):
        cam.read()
    with pytest.raises(DriverError, match="depth is off"):
        cam.read_depth()


# ---------------------------------------------------------------------- UR
class RTDEDouble:
    """Test doubles of ur_rtde's RTDEControlInterface and RTDEReceiveInterface."""

    def __init__(self):
        self.tcp = [0.4, 0.1, 0.3, np.pi, 0.0, 0.0]  # gripper down, as UR reports it
        self.protective = self.estop = False
        self.robot_time = 0.0
        self.servo, self.servo_j, self.stops, self.accept = [], [], 0, True

    # receive
    def isConnected(self):
        return True

    def isEmergencyStopped(self):
        return self.estop

    def isProtectiveStopped(self):
        return self.protective

    def getTimestamp(self):
        return self.robot_time

    def getActualQ(self):
        return [0.0, -1.57, 1.57, -1.57, -1.57, 0.0]

    def getActualQd(self):
        return [0.0] * 6

    def getActualTCPPose(self):
        return self.tcp

    def getActualTCPForce(self):
        return [1.0, 2.0, 3.0, 0.1, 0.2, 0.3]

    # control (ur_rtde binds these positionally: servoL/servoJ(target, speed, acceleration, time,
    # lookahead_time, gain) -> bool)
    def servoL(self, pose, speed, acceleration, time, lookahead_time, gain):
        self.servo.append((pose, time))
        return self.accept

    def servoJ(self, q, speed, acceleration, time, lookahead_time, gain):
        self.servo_j.append((list(q), time, lookahead_time, gain))
        return self.accept

    def servoStop(self, a):
        self.stops += 1

    def stopScript(self):
        self.closed = True

    def disconnect(self):
        self.closed = True


def ur_arm(rtde, clock):
    return URArm("192.0.2.10", DOWN, period=0.1, receive_timeout=0.04, control=rtde, receive=rtde, clock=clock)


def test_ur_state_and_commands_convert_axis_angle_and_quaternions():
    rtde, now = RTDEDouble(), [0.0]
    arm = ur_arm(rtde, lambda: now[0])
    state = arm.state()
    assert np.allclose(state.ee_pose[:3], [0.4, 0.1, 0.3])
    assert abs(abs(state.ee_pose[4]) - 1.0) < 1e-9  # rotation of π about x: qx = ±1
    assert state.wrench.tolist() == [1.0, 2.0, 3.0, 0.1, 0.2, 0.3]
    target = np.array([0.45, 0.1, 0.25, *Rotation.from_euler("x", 170, degrees=True).as_quat(scalar_first=True)])
    arm.command(target)
    pose, period = rtde.servo[-1]
    assert period == 0.1 and np.allclose(pose, quat_pose_to_rotvec(target))
    assert np.allclose(rotvec_pose_to_quat(np.asarray(pose)), target)
    arm.stop()
    assert rtde.stops == 1


def test_ur_joint_commands_go_to_servoj_and_it_senses_force():
    rtde, now = RTDEDouble(), [0.0]
    arm = ur_arm(rtde, lambda: now[0])
    assert arm.takes_joint_commands and arm.senses_force and arm.label == "UR arm at 192.0.2.10"
    q = [0.1, -1.5, 1.5, -1.6, -1.57, 0.2]
    arm.command_joints(np.array(q))
    assert rtde.servo_j == [(q, 0.1, 0.1, 300)] and rtde.servo == []
    with pytest.raises(ValueError, match=r"UR arm at 192\.0\.2\.10: joint targets must be 6 finite numbers"):
        arm.command_joints(np.zeros(7))
    rtde.accept = False
    with pytest.raises(DriverError, match="servoJ was refused"):
        arm.command_joints(np.array(q))
    rtde.accept, rtde.protective = True, True
    with pytest.raises(DriverError, match="protective stop"):
        arm.command_joints(np.array(q))
    assert len(rtde.servo_j) == 2  # the refused one reached servoJ; the faulted one did not


def test_ur_faults_are_raised_never_cleared():
    rtde, now = RTDEDouble(), [0.0]
    arm = ur_arm(rtde, lambda: now[0])
    rtde.protective = True
    with pytest.raises(DriverError, match="protective stop"):
        arm.command(DOWN)
    with pytest.raises(DriverError, match="protective stop"):  # still there: nothing cleared it
        arm.state()
    rtde.protective, rtde.estop = False, True
    with pytest.raises(DriverError, match="emergency stop"):
        arm.state()
    rtde.estop, rtde.accept = False, False
    with pytest.raises(DriverError, match="servoL was refused"):
        arm.command(np.array([0.4, 0.1, 0.3, *DOWN]))


def test_ur_receive_timeout():
    rtde, now = RTDEDouble(), [0.0]
    arm = ur_arm(rtde, lambda: now[0])
    arm.state()
    now[0] = 0.03
    arm.state()  # same robot time, but within the timeout
    now[0] = 0.05
    with pytest.raises(DriverError, match=r"no new RTDE data for 0\.050 s"):
        arm.state()
    rtde.robot_time = 0.05
    arm.state()  # data flows again


# ---------------------------------------------------------------------- xArm
class XArmDouble:
    """A test double of xarm.wrapper.XArmAPI (millimetres, roll/pitch/yaw in radians), its
    signatures as in xarm-python-sdk 1.18; ``ft`` is a fitted F/T sensor's reading, or None."""

    def __init__(self, ft=None):
        self.connected, self.error_code = True, 0
        self.calls, self.pose = [], [400.0, 0.0, 300.0, np.pi, 0.0, 0.0]
        self.ft, self.ft_enabled = ft, False

    def motion_enable(self, enable):
        self.calls.append(("motion_enable", enable))
        return 0

    def set_mode(self, mode):
        self.calls.append(("set_mode", mode))
        return 0

    def set_state(self, state):
        self.calls.append(("set_state", state))
        return 0

    def get_position(self, is_radian):
        return 0, list(self.pose)

    def get_joint_states(self, is_radian):
        return 0, [[0.1] * 7, [0.0] * 7, [0.0] * 7]

    def set_ft_sensor_enable(self, on_off):
        self.calls.append(("set_ft_sensor_enable", on_off))
        self.ft_enabled = bool(on_off) and self.ft is not None
        return 0 if self.ft is not None else 1

    def get_ft_sensor_data(self, is_raw=False):
        if not self.ft_enabled:
            return 1, [0.0] * 6  # no sensor fitted, or not enabled
        return 0, list(self.ft)

    def set_servo_cartesian(self, mvpose, speed=None, mvacc=None, mvtime=0, is_radian=None, is_tool_coord=False,
                            **kwargs):
        self.calls.append(("servo", list(mvpose)))
        return 0

    def set_servo_angle_j(self, angles, speed=None, mvacc=None, mvtime=None, is_radian=None, **kwargs):
        assert is_radian is True  # the driver speaks radians
        self.calls.append(("servo_j", list(angles)))
        return 0

    def clean_error(self):
        raise AssertionError("the driver must never clear a controller error")


def test_xarm_enables_servo_mode_and_converts_units():
    api = XArmDouble()
    arm = XArm("192.0.2.20", DOWN, api=api)
    assert api.calls[:3] == [("motion_enable", True), ("set_mode", 1), ("set_state", 0)]
    state = arm.state()
    assert np.allclose(state.ee_pose[:3], [0.4, 0.0, 0.3]) and abs(abs(state.ee_pose[4]) - 1) < 1e-9
    assert state.q.shape == (7,) and state.wrench.tolist() == [0.0] * 6
    arm.command(np.array([0.41, 0.02, 0.25, *DOWN]))
    name, pose = api.calls[-1]
    assert name == "servo" and np.allclose(pose[:3], [410.0, 20.0, 250.0]) and abs(abs(pose[3]) - np.pi) < 1e-9
    arm.stop()
    assert api.calls[-1] == ("servo", api.pose)  # hold: servo to where it is


def test_xarm_joint_commands_go_to_set_servo_angle_j():
    api = XArmDouble()
    arm = XArm("192.0.2.20", DOWN, api=api)
    assert arm.takes_joint_commands
    q = [0.1, -0.2, 0.0, 0.5, 0.0, 0.7, 0.0]  # 7, as get_joint_states reports on every model
    arm.command_joints(np.array(q))
    assert api.calls[-1] == ("servo_j", q)
    with pytest.raises(ValueError, match="joint targets must be 7 finite numbers"):
        arm.command_joints(np.array([0.0, np.nan, 0, 0, 0, 0, 0]))
    api.error_code = 24
    with pytest.raises(DriverError, match="controller error 24"):
        arm.command_joints(np.array(q))


def test_xarm_senses_force_only_with_its_ft_sensor_configured():
    api = XArmDouble(ft=[0.0, 0.0, 12.0, 0.0, 0.1, 0.0])
    arm = XArm("192.0.2.20", DOWN, api=api)  # the sensor is there, but nobody said so: not read
    assert not arm.senses_force and arm.state().wrench.tolist() == [0.0] * 6
    assert ("set_ft_sensor_enable", 1) not in api.calls
    api = XArmDouble(ft=[0.0, 0.0, 12.0, 0.0, 0.1, 0.0])
    arm = XArm("192.0.2.20", DOWN, api=api, ft_sensor=True)
    assert arm.senses_force and ("set_ft_sensor_enable", 1) in api.calls
    assert arm.state().wrench.tolist() == [0.0, 0.0, 12.0, 0.0, 0.1, 0.0]
    api.ft_enabled = False  # the sensor stops answering: a fault, never zeros
    with pytest.raises(DriverError, match="get_ft_sensor_data failed with code 1"):
        arm.state()
    with pytest.raises(DriverError, match="set_ft_sensor_enable failed"):  # configured, but not fitted
        XArm("192.0.2.20", DOWN, api=XArmDouble(), ft_sensor=True)


def test_a_contact_limit_on_an_xarm_without_ft_sensor_is_refused_at_start_up(tmp_path):
    from robot_rl.drivers.factory import ARM_JOINTS
    from robot_rl.safety import ArmCapabilityError, SafeArm, load_limits
    from robot_rl.safety.limits import limits_path

    limits = load_limits("sim_panda", ARM_JOINTS["xarm"])  # the same joint names as the xArm 7's
    with pytest.raises(ArmCapabilityError, match=r"^safety limits sim_panda\.yaml: 'contact' .* xArm at 192\.0\.2\.20 "
                                                 r"without an F/T sensor .*cannot sense force.*'contact: none'"):
        SafeArm.from_limits(XArm("192.0.2.20", DOWN, api=XArmDouble()), limits, 0.1, clock=lambda: 0.0)
    text = limits_path("sim_panda").read_text()
    start = text.index("\ncontact:")
    end = text.index("\ngripper:")
    path = tmp_path / "xarm7_no_ft.yaml"
    path.write_text(text[:start] + "\ncontact: none  # no F/T sensor on this arm\n" + text[end:])
    api = XArmDouble()
    safe = SafeArm.from_limits(XArm("192.0.2.20", DOWN, api=api), load_limits(str(path), ARM_JOINTS["xarm"]), 0.1,
                               clock=lambda: 0.0, joint_commands=True)
    q = np.full(7, 0.1)  # the double rests at 0.1 rad on every joint
    q[0] = 0.15
    safe.command_joints(q)
    assert api.calls[-1] == ("servo_j", q.tolist())  # through the chain, unchanged (inside every limit)
    armed = SafeArm.from_limits(XArm("192.0.2.20", DOWN, api=XArmDouble(ft=[0.0] * 6), ft_sensor=True), limits, 0.1,
                                clock=lambda: 0.0)
    assert armed.senses_force


def test_xarm_controller_errors_are_surfaced_not_cleared():
    api = XArmDouble()
    arm = XArm("192.0.2.20", DOWN, api=api)
    api.error_code = 31
    with pytest.raises(DriverError, match="controller error 31"):
        arm.command(np.array([0.41, 0.02, 0.25, *DOWN]))
    api.error_code, api.connected = 0, False
    with pytest.raises(DriverError, match="not connected"):
        arm.state()

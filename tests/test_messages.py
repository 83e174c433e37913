"""Message conversions against the real Humble and Jazzy definitions shipped by rosbags:
every message is built, serialised to CDR, read back and converted again."""

import array

import numpy as np
import pytest

from robot_rl import messages
from robot_rl.drivers.base import CameraInfo
from robot_rl.messages import MessageError, RosbagsTypes


@pytest.fixture(params=["humble", "jazzy"], scope="module")
def types(request):
    return RosbagsTypes(request.param)


def wire(types, msg):
    """Through the real wire format and back."""
    return types.deserialize(types.serialize(msg), msg.__msgtype__)


def rgb(h=6, w=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_colour_images_round_trip(types, encoding):
    image = rgb()
    msg = wire(types, messages.image_to_msg(types, image, 12.25, "front_optical", encoding))
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.header.frame_id) == (encoding, 6, 5, 15, "front_optical")
    assert messages.stamp_from_msg(msg.header.stamp) == 12.25
    assert np.array_equal(messages.image_from_msg(msg), image)


def test_bgr8_bytes_are_in_bgr_order(types):
    image = np.zeros((1, 1, 3), np.uint8)
    image[0, 0] = (10, 20, 30)
    msg = messages.image_to_msg(types, image, 0.0, "f", "bgr8")
    assert list(np.asarray(msg.data)) == [30, 20, 10]


@pytest.mark.parametrize("encoding,dtype", [("mono8", np.uint8), ("16UC1", np.uint16)])
def test_one_channel_images_round_trip(types, encoding, dtype):
    image = np.random.default_rng(1).integers(0, np.iinfo(dtype).max, (4, 7), dtype=dtype)
    msg = wire(types, messages.image_to_msg(types, image, 1.0, "depth", encoding))
    assert msg.step == 7 * np.dtype(dtype).itemsize and msg.is_bigendian == 0
    out = messages.image_from_msg(msg)
    assert out.dtype == dtype and np.array_equal(out, image)


def test_padded_rows_and_big_endian_depth_are_read(types):
    depth = np.array([[1, 2, 3], [256, 1000, 65535]], np.uint16)
    rows = np.zeros((2, 8), np.uint8)  # 6 bytes of pixels + 2 bytes of padding per row
    rows[:, :6] = depth.astype(">u2").view(np.uint8).reshape(2, 6)
    msg = types.cls("sensor_msgs/msg/Image")(header=messages.header(types, 0.0, "d"), height=2, width=3,
                                             encoding="16UC1", is_bigendian=1, step=8, data=rows.reshape(-1))
    assert np.array_equal(messages.image_from_msg(wire(types, msg)), depth)


@pytest.mark.parametrize("mutate,complaint", [
    (lambda m: setattr(m, "encoding", "yuv422"), "not supported"),
    (lambda m: setattr(m, "data", np.asarray(m.data)[:-1]), "data bytes"),
    (lambda m: setattr(m, "step", 14), "step 14 is less than"),
    (lambda m: setattr(m, "height", 7), "data bytes"),
])
def test_broken_images_are_clear_errors(types, mutate, complaint):
    msg = messages.image_to_msg(types, rgb(), 0.0, "f")
    mutate(msg)
    with pytest.raises(MessageError, match=complaint):
        messages.image_from_msg(msg)


@pytest.mark.parametrize("image,encoding,complaint", [
    (np.zeros((4, 4), np.uint8), "rgb8", "needs a H×W×3 uint8"),
    (np.zeros((4, 4, 3), np.float32), "bgr8", "needs a H×W×3 uint8"),
    (np.zeros((4, 4), np.uint8), "16UC1", "needs a H×W uint16"),
    (np.zeros((4, 4), np.uint8), "32FC1", "not supported"),
])
def test_wrong_images_are_refused_when_publishing(types, image, encoding, complaint):
    with pytest.raises(MessageError, match=complaint):
        messages.image_to_msg(types, image, 0.0, "f", encoding)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed_images_round_trip(types, fmt):
    image = np.zeros((32, 48, 3), np.uint8)
    image[:, :24] = (200, 30, 60)  # large flat areas: jpeg keeps them close
    image[:, 24:] = (20, 180, 240)
    msg = wire(types, messages.compressed_image_to_msg(types, image, 3.5, "wrist", fmt))
    assert fmt in msg.format and msg.header.frame_id == "wrist"
    out = messages.compressed_image_from_msg(msg)
    assert out.shape == image.shape
    if fmt == "png":
        assert np.array_equal(out, image)
    else:
        assert np.abs(out.astype(int) - image).mean() < 4


def test_broken_compressed_images_are_clear_errors(types):
    msg = messages.compressed_image_to_msg(types, rgb(16, 16), 0.0, "f", "png")
    msg.data = np.asarray(msg.data)[:20]
    with pytest.raises(MessageError, match="could not be decoded"):
        messages.compressed_image_from_msg(msg)
    msg.format = "theora"
    with pytest.raises(MessageError, match="neither jpeg nor png"):
        messages.compressed_image_from_msg(msg)


def test_camera_info_round_trip(types):
    info = CameraInfo(640, 480, 600.5, 601.0, 319.5, 241.25, "front_optical", (0.1, -0.2, 0.001, 0.002, 0.05))
    msg = wire(types, messages.camera_info_to_msg(types, info, 2.0))
    assert msg.distortion_model == "plumb_bob" and np.asarray(msg.p).reshape(3, 4)[0, 0] == 600.5
    assert messages.camera_info_from_msg(msg) == info
    msg.k = np.zeros(9)
    with pytest.raises(MessageError, match="no valid K"):
        messages.camera_info_from_msg(msg)


def test_joint_state_round_trip_and_reorder(types):
    names = ["joint1", "joint2", "joint3"]
    msg = wire(types, messages.joint_state_to_msg(types, names, [0.1, 0.2, 0.3], [1.0, 2.0, 3.0], None, 5.0))
    reading = messages.joint_state_from_msg(msg, ["joint3", "joint1"])
    assert reading.names == ("joint3", "joint1") and reading.stamp == 5.0
    assert reading.position.tolist() == [0.3, 0.1] and reading.velocity.tolist() == [3.0, 1.0]
    assert np.all(np.isnan(reading.effort))  # not measured
    with pytest.raises(MessageError, match="no joint 'joint7'"):
        messages.joint_state_from_msg(msg, ["joint7"])
    with pytest.raises(MessageError, match="2 values for 3 joints"):
        messages.joint_state_to_msg(types, names, [0.1, 0.2], None, None, 0.0)
    msg.velocity = np.array([1.0])
    with pytest.raises(MessageError, match="velocity has 1 values for 3 joints"):
        messages.joint_state_from_msg(msg)


def test_pose_round_trip_keeps_the_quaternion_order(types):
    pose = np.array([0.5, -0.1, 0.3, 0.0, 1.0, 0.0, 0.0])  # gripper down: qw=0, qx=1
    msg = wire(types, messages.pose_to_msg(types, pose, 1.5, "base"))
    assert (msg.pose.orientation.x, msg.pose.orientation.w) == (1.0, 0.0)
    assert np.array_equal(messages.pose_from_msg(msg), pose)
    msg.pose.orientation.x = 0.0
    with pytest.raises(MessageError, match="not a pose"):
        messages.pose_from_msg(msg)
    with pytest.raises(MessageError, match="7 finite numbers"):
        messages.pose_to_msg(types, [0.5, 0.0, np.nan, 1, 0, 0, 0], 0.0, "base")


def test_twist_and_wrench_round_trip(types):
    values = np.array([0.1, -0.2, 0.3, 0.01, 0.02, -0.03])
    twist = wire(types, messages.twist_to_msg(types, values, 0.5, "base"))
    wrench = wire(types, messages.wrench_to_msg(types, 10 * values, 0.5, "tool"))
    assert np.array_equal(messages.twist_from_msg(twist), values)
    assert np.array_equal(messages.wrench_from_msg(wrench), 10 * values)
    assert (twist.twist.angular.z, wrench.wrench.torque.z) == (-0.03, -0.3)
    with pytest.raises(MessageError, match="6 finite numbers"):
        messages.twist_to_msg(types, values[:5], 0.0, "base")


def test_stamps_keep_nanoseconds_and_refuse_nonsense(types):
    msg = messages.stamp_to_msg(types, 1700000000.123456789)
    assert msg.sec == 1700000000 and abs(msg.nanosec - 123456789) < 300  # float seconds carry ~0.2 µs here
    assert messages.stamp_from_msg(messages.stamp_to_msg(types, 0.999999999999)) < 1.0
    for bad in (float("nan"), -1.0):
        with pytest.raises(MessageError, match="stamp"):
            messages.stamp_to_msg(types, bad)


def test_rclpy_style_sequences_are_read_too():
    """rclpy holds unbounded arrays as array.array; the readers take any buffer."""
    rclpy_like = messages.RclpyTypes()
    data = rclpy_like.sequence(rgb().reshape(-1))
    assert isinstance(data, array.array) and data.typecode == "B"
    jazzy = RosbagsTypes("jazzy")
    msg = messages.image_to_msg(jazzy, rgb(), 0.0, "f")
    msg.data = data
    assert np.array_equal(messages.image_from_msg(msg), rgb())
    assert rclpy_like.sequence(np.array([1.5, 2.5])).typecode == "d"


def test_unknown_distro_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown ROS 2 distro 'iron'"):
        RosbagsTypes("iron")

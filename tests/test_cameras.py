import numpy as np
import pytest

from robot_rl.config import ConfigError
from robot_rl.sim.simulation import CUBE_HALF_SIZE


def _red_pixels(image: np.ndarray) -> int:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return int(np.sum((r > 150) & (g < 80) & (b < 80)))


def test_cube_is_seen_by_both_cameras_and_moving_it_changes_the_pixels(make_sim_env):
    env = make_sim_env("task=pick_cube")
    env.reset(seed=0)
    sim = env.backend.sim
    ee = sim.ee_pose().pos
    under_gripper = np.array([ee[0], ee[1], CUBE_HALF_SIZE])

    sim.place_cube(under_gripper, 0.0)
    seen = {name: cam.read().image for name, cam in env.backend.cameras.items()}
    sim.place_cube(np.array([0.45, 0.0, -0.3]), 0.0)  # under the table top, hidden from both cameras
    unseen = {name: cam.read().image for name, cam in env.backend.cameras.items()}

    for name in ("front", "wrist"):
        assert _red_pixels(seen[name]) > 20, f"cube not visible in {name}"
        assert _red_pixels(unseen[name]) == 0, f"{name} sees red where no cube is"
        changed = np.any(seen[name] != unseen[name], axis=-1)
        assert changed.sum() > 20


def test_camera_info_matches_the_rendered_image(make_sim_env):
    env = make_sim_env("task=reach")
    info = env.backend.cameras["front"].info()
    assert (info.width, info.height) == (128, 128)
    assert info.fx == info.fy > 0 and info.k[0, 2] == info.cx


def test_crop_and_resize_from_config(make_sim_env):
    env = make_sim_env("cameras.front.resolution=[240,320]", "cameras.front.crop=[40,0,240,240]",
                       "cameras.front.size=[96,96]")
    obs, _ = env.reset(seed=0)
    assert obs["front"].shape == (96, 96, 3) and obs["front"].dtype == np.uint8


def _blue_pixels(image: np.ndarray) -> int:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return int(np.sum((b > 150) & (r < 80) & (g < 120)))


MOVED = ["robot.camera_offsets.front.shift=[0.0,-0.15,0.1]", "robot.camera_offsets.front.turn=[-8,-6,0]"]


def test_a_camera_offset_moves_that_camera_only_and_a_cube_colour_paints_the_cube(make_sim_env):
    frames = {}
    for name, overrides in {"scene": [], "moved": MOVED, "blue": ["task.cube_rgba=[0.15,0.3,0.9,1]"]}.items():
        env = make_sim_env("task=pick_cube", "cameras=sim64", *overrides)
        frames[name], _ = env.reset(seed=0)
    assert np.abs(frames["moved"]["front"].astype(int) - frames["scene"]["front"]).mean() > 10
    np.testing.assert_array_equal(frames["moved"]["wrist"], frames["scene"]["wrist"])
    for cam in ("front", "wrist"):
        assert _red_pixels(frames["scene"][cam]) > 5 and _blue_pixels(frames["scene"][cam]) == 0
        assert _blue_pixels(frames["blue"][cam]) > 5 and _red_pixels(frames["blue"][cam]) == 0


def test_camera_offsets_are_from_the_scene_pose_so_moving_again_does_not_add_up(make_sim_env):
    env = make_sim_env("task=reach", "cameras=sim64")
    sim = env.backend.sim
    sim.move_camera("front", [0.0, -0.15, 0.1], [-8, -6, 0])
    once = sim.render("front", 64, 64)
    sim.move_camera("front", [0.0, -0.15, 0.1], [-8, -6, 0])
    np.testing.assert_array_equal(sim.render("front", 64, 64), once)
    cam = sim.model.camera("front").id

    def axes():  # the camera's right, up and backward axes in the world (columns)
        return sim.data.cam_xmat[cam].reshape(3, 3).copy()

    sim.move_camera("front")
    before = axes()
    sim.move_camera("front", turn=[90, 0, 0])  # pan a quarter turn left: it now looks where its left was
    np.testing.assert_allclose(-axes()[:, 2], -before[:, 0], atol=1e-6)
    sim.move_camera("front", turn=[0, 90, 0])  # tilt a quarter turn up: it looks where its up was
    np.testing.assert_allclose(-axes()[:, 2], before[:, 1], atol=1e-6)
    with pytest.raises(ValueError, match="no camera 'side'"):
        sim.move_camera("side", [0, 0, 0])
    with pytest.raises(ValueError, match="3 finite numbers"):
        sim.move_camera("front", [0, 0])
    with pytest.raises(ValueError, match="each in"):
        sim.set_cube_rgba([1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["+robot.camera_offsets.side.shift=[0,0,0.1]"], "'robot.camera_offsets.side'"),
        (["robot.camera_offsets.front.shift=[0,0.1]"], "'robot.camera_offsets.front.shift'"),
        (["robot.camera_offsets.front.turn=[0,0,200]"], "'robot.camera_offsets.front.turn'"),
        (["task.cube_rgba=[1,0,0]"], "'task.cube_rgba'"),
        (["task.cube_rgba=[1,0,0,0]"], "'task.cube_rgba'"),
        (["robot=sim_ros", "task.cube_rgba=[0,0,1,1]"], "'task.cube_rgba'"),
        (["robot=sim_ros", "+robot.camera_offsets.front.shift=[0,0,0.1]"], "'robot.camera_offsets.front'"),
    ],
)
def test_a_bad_camera_offset_or_cube_colour_is_one_error_naming_the_key(make_sim_env, overrides, key):
    with pytest.raises(ConfigError, match=key):
        make_sim_env(*overrides, with_cameras=False)

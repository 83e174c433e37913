import numpy as np

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

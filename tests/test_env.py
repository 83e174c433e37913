import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robot_rl.env.robot_env import STATE_KEY
from robot_rl.sim.expert import ScriptedExpert


@pytest.mark.parametrize("env_id", ["robot_rl/Reach-v0", "robot_rl/PushCube-v0", "robot_rl/PickCube-v0"])
def test_check_env(env_id):
    import robot_rl.robots  # noqa: F401 - registers the ids

    env = gym.make(env_id, render_mode="rgb_array")
    try:
        check_env(env.unwrapped, skip_render_check=False)
    finally:
        env.close()


def test_spaces_are_uint8_images_and_float_state(make_sim_env):
    env = make_sim_env("task=pick_cube")
    obs, info = env.reset(seed=0)
    assert set(obs) == {"front", "wrist", STATE_KEY}
    for cam in ("front", "wrist"):
        assert obs[cam].dtype == np.uint8 and obs[cam].shape == (128, 128, 3)
    assert obs[STATE_KEY].dtype == np.float32
    assert env.observation_space.contains(obs)
    assert env.action_space == gym.spaces.Box(-1, 1, (4,), np.float32)
    assert 0.0 <= info["progress"] <= 1.0


def _run(env, seed, steps=15):
    expert = ScriptedExpert(env)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(expert.act(obs))
        trace.append({**obs, "reward": reward, "progress": info["progress"]})
        if terminated or truncated:
            break
    return trace


def test_same_seed_same_episode(make_sim_env):
    env = make_sim_env("task=pick_cube")
    a, b, c = _run(env, 3), _run(env, 3), _run(env, 4)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert not np.array_equal(a[0]["front"], c[0]["front"])  # another seed, another layout


def test_time_limit_is_a_truncation(make_sim_env):
    env = make_sim_env("task=reach", "task.max_steps=3", with_cameras=False)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    results = [env.step(zero) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]
    assert not any(r[2] for r in results)


def test_success_terminates(make_sim_env):
    env = make_sim_env("task=reach", "task.reward=sparse", with_cameras=False)
    trace = _run(env, 0, steps=50)
    assert trace[-1]["reward"] == 1.0 and trace[-1]["progress"] == 1.0


@pytest.mark.parametrize("bad", [np.array([np.nan, 0, 0, 0]), np.array([0, np.inf, 0, 0]), np.zeros(3), np.zeros(5)])
def test_bad_actions_are_refused_and_nothing_moves(make_sim_env, bad):
    env = make_sim_env("task=reach", with_cameras=False)
    env.reset(seed=0)
    before = env.backend.sim.data.ctrl.copy()
    with pytest.raises(ValueError, match="action"):
        env.step(bad.astype(np.float32))
    np.testing.assert_array_equal(env.backend.sim.data.ctrl, before)


def test_action_moves_end_effector_along_the_commanded_axis(make_sim_env):
    env = make_sim_env("task=reach", with_cameras=False)
    env.reset(seed=0)
    start = env.backend.sim.ee_pose().pos
    for _ in range(5):
        env.step(np.array([1.0, 0.0, 0.0, -1.0], np.float32))
    moved = env.backend.sim.ee_pose().pos - start
    assert moved[0] > 0.05 and abs(moved[1]) < 0.01 and abs(moved[2]) < 0.01


def test_workspace_box_holds_under_random_actions(make_sim_env):
    env = make_sim_env("task=pick_cube", with_cameras=False)
    env.reset(seed=0)
    low, high = env.workspace
    rng = np.random.default_rng(0)
    for _ in range(100):
        env.step(rng.choice([-1.0, 1.0], size=4).astype(np.float32))
        pos = env.backend.sim.ee_pose().pos
        assert np.all(pos > low - 0.01) and np.all(pos < high + 0.01)


def test_rotation_actions_turn_the_gripper(make_sim_env):
    env = make_sim_env("task=reach", "task.action.rotation=true", with_cameras=False)
    assert env.action_space.shape == (7,)
    env.reset(seed=0)
    q0 = env.backend.sim.ee_pose().quat
    for _ in range(3):
        env.step(np.array([0, 0, 0, 0, 0, 1.0, 0], np.float32))
    angle = 2 * np.arccos(min(1.0, abs(float(np.dot(q0, env.backend.sim.ee_pose().quat)))))
    assert 0.2 < angle < 0.4  # three steps of 0.1 rad about z


def test_dense_reward_is_progress_minus_one(make_sim_env):
    env = make_sim_env("task=reach", "task.reward=dense", with_cameras=False)
    trace = _run(env, 0, steps=50)
    assert all(-1.0 <= t["reward"] <= 0.0 for t in trace[1:])
    assert trace[-1]["reward"] == 0.0 and trace[1]["reward"] == trace[1]["progress"] - 1.0


def test_gripper_toggle_mode_switches_and_holds(make_sim_env):
    env = make_sim_env("task=reach", "task.action.gripper_mode=toggle", with_cameras=False)
    env.reset(seed=0)
    width = lambda: env.backend.sim.gripper_width()  # noqa: E731

    def step(command):
        env.step(np.array([0, 0, 0, command], np.float32))
        return width()

    step(1.0)  # close (the fingers take a little longer than one step)
    assert step(0.0) < 0.01  # stays closed
    assert step(0.3) < 0.01  # still inside the dead band
    step(-1.0)  # open
    assert step(0.0) > 0.07  # stays open
    assert step(-0.4) > 0.07


def test_gripper_absolute_mode_sets_the_opening(make_sim_env):
    env = make_sim_env("task=reach", with_cameras=False)
    env.reset(seed=0)
    env.step(np.array([0, 0, 0, 0.0], np.float32))
    env.step(np.array([0, 0, 0, 0.0], np.float32))
    assert 0.03 < env.backend.sim.gripper_width() < 0.05  # half open

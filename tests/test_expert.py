import numpy as np
import pytest

from robot_rl.sim.expert import NEAR_MISSES, NearMissExpert, ScriptedExpert
from robot_rl.sim.simulation import CUBE_HALF_SIZE


@pytest.mark.parametrize("task", ["reach", "push_cube", "pick_cube"])
def test_scripted_expert_solves_each_task(make_sim_env, task):
    env = make_sim_env(f"task={task}", with_cameras=False)
    expert = ScriptedExpert(env)
    successes = []
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            done = terminated or truncated
        successes.append(info["is_success"])
    assert np.mean(successes) >= 0.95, f"{task}: expert solved {np.mean(successes):.0%}"


def test_random_policy_rarely_picks(make_sim_env):
    """Guards against a success check that is always true."""
    env = make_sim_env("task=pick_cube", with_cameras=False)
    successes = 0
    for seed in range(5):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            done = terminated or truncated
        successes += info["is_success"]
    assert successes <= 1


def test_progress_rises_along_an_expert_episode(make_sim_env):
    env = make_sim_env("task=pick_cube", with_cameras=False)
    expert = ScriptedExpert(env)
    obs, info = env.reset(seed=1)
    progress = [info["progress"]]
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        progress.append(info["progress"])
        done = terminated or truncated
    assert progress[0] < 0.2 and progress[-1] == 1.0
    assert np.corrcoef(np.arange(len(progress)), progress)[0, 1] > 0.8


@pytest.mark.parametrize("kind", NEAR_MISSES)
def test_a_near_miss_looks_like_a_pick_and_fails_as_scripted(make_sim_env, kind):
    env = make_sim_env("task=pick_cube", "task.max_steps=40", with_cameras=False)
    sim = env.backend.sim
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        expert = NearMissExpert(env, kind, seed=seed)
        start_cube, start_ee, missed_at, done = sim.cube_pos(), sim.ee_pose().pos, None, False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            assert not info["is_success"]
            if expert.missed and missed_at is None:
                missed_at = env.steps
            done = terminated or truncated
        assert missed_at is not None and missed_at < 25, f"{kind}, seed {seed}: the near miss came at {missed_at}"
        lifted = sim.cube_pos()[2] - CUBE_HALF_SIZE
        if kind == "low_lift":  # held 1 cm up
            assert sim.fingers_touch_cube() and 0.007 < lifted < 0.015
        elif kind == "beside":  # closed on the table, the cube untouched
            assert sim.gripper_width() < 0.005 and not sim.fingers_touch_cube()
            assert np.linalg.norm(sim.cube_pos() - start_cube) < 0.005 and sim.ee_pose().pos[2] < 0.03
        else:  # let go: the cube back on the table, the arm where it started
            assert abs(lifted) < 0.003 and sim.gripper_width() > 0.07
            assert np.linalg.norm(sim.ee_pose().pos - start_ee) < 0.02


def test_a_near_miss_is_one_of_the_known_kinds_on_pick_cube(make_sim_env):
    with pytest.raises(ValueError, match="one of low_lift, beside, drop"):
        NearMissExpert(make_sim_env("task=pick_cube", with_cameras=False), "wave")
    with pytest.raises(ValueError, match="pick_cube, not 'reach'"):
        NearMissExpert(make_sim_env("task=reach", with_cameras=False), "beside")

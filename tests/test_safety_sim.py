"""The safety layer on the simulated arm: watchdog on sim time, the e-stop across
episodes, and random and adversarial policies that never get the arm out of its box."""

import numpy as np
import pytest

from robot_rl.sim.audit import adversarial_policy, random_policy, run_policy


def test_the_watchdog_halts_the_sim_arm_within_one_control_period_after_commands_stop(make_sim_env):
    env = make_sim_env("task=reach", with_cameras=False)
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.array([1.0, 0.0, 0.0, -1.0], np.float32))
    arm, sim = env.backend.arm, env.backend.sim
    last = sim.time - env.control_dt  # the last step commanded, then let one period pass
    timeout = arm.limits.watchdog.command_timeout
    env.backend.advance(timeout - env.control_dt - 0.05)  # nobody commands; sim time goes on
    assert not arm.halted
    env.backend.advance(1.0)
    assert arm.halted
    events = [e for e in arm.take_events() if e.reason == "command_timeout"]
    assert len(events) == 1 and timeout < events[0].stamp - last <= timeout + env.control_dt + 1e-9
    assert np.abs(sim.arm_dq()).max() < 1e-2 and env.safety_counts["command_timeout"] == 1  # held, halted once
    _, _, _, _, info = env.step(np.zeros(4, np.float32))  # a fresh command resumes
    assert not arm.halted and info["safety_events"] == []


def test_estop_latches_across_episodes_until_the_explicit_reset(make_sim_env):
    env = make_sim_env("task=reach", with_cameras=False)
    env.reset(seed=0)
    env.estop.trigger("operator", "test")
    push = np.array([1.0, 1.0, -1.0, 1.0], np.float32)
    for seed in (1, 2):  # two more episodes: still latched, the arm never moves
        env.reset(seed=seed)
        start = env.backend.sim.ee_pose().pos
        for _ in range(5):
            _, _, _, _, info = env.step(push)
            assert {e.reason for e in info["safety_events"]} == {"estop_latched"}  # arm and gripper commands
        assert np.linalg.norm(env.backend.sim.ee_pose().pos - start) < 0.002
    assert env.estop.latched and env.safety_counts["estop_latched"] == 20
    env.estop.reset()
    start = env.backend.sim.ee_pose().pos
    env.step(push)
    assert np.linalg.norm(env.backend.sim.ee_pose().pos - start) > 0.01


def test_targets_outside_the_box_are_clipped_and_reported(make_sim_env):
    env = make_sim_env("task=reach", with_cameras=False)
    env.reset(seed=0)
    infos = [env.step(np.array([0.0, 0.0, -1.0, -1.0], np.float32))[4] for _ in range(15)]
    low, _ = env.workspace
    margin = env.safety.limits.tracking_margin
    assert margin > 0 and abs(env.backend.sim.ee_pose().pos[2] - (low[2] + margin)) < margin  # kept off the face
    assert any(e.reason == "position_limit" for info in infos for e in info["safety_events"])
    assert env.safety_counts["position_limit"] >= 1


@pytest.mark.parametrize("policy", [random_policy, adversarial_policy])
def test_policies_never_get_the_arm_out_of_the_box_or_into_the_table(make_sim_env, policy):
    env = make_sim_env("task=pick_cube", "task.max_steps=200", with_cameras=False)
    result = run_policy(env, policy, steps=1500)  # benchmarks/safety.py runs 10k of each
    assert result.steps == 1500
    assert result.box_violations == 0 and result.table_penetrations == 0, result
    if policy is adversarial_policy:
        assert result.events["position_limit"] > 1000  # it really did push on the walls

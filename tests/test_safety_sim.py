"""The safety layer on the simulated arm: watchdog on sim time, the e-stop across
episodes, random and adversarial env-level policies that never get the arm out of its box
(through the env, whose actions are capped at 2 cm a step with rotation off), and commands
sent straight to the arm that hit every filter and get nothing past a limit."""

import numpy as np
import pytest

from robot_rl.safety import Command
from robot_rl.safety.rotations import quat_to_rpy, rpy_to_quat
from robot_rl.sim.arm_audit import ArmAuditResult, GroundTruth, run_arm_audit
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
def test_env_level_policies_never_get_the_arm_out_of_the_box_or_into_the_table(make_sim_env, policy):
    env = make_sim_env("task=pick_cube", "task.max_steps=200", with_cameras=False)
    result = run_policy(env, policy, steps=1500)  # benchmarks/safety.py runs 10k of each
    assert result.steps == 1500
    assert result.box_violations == 0 and result.table_penetrations == 0, result
    if policy is adversarial_policy:
        assert result.events["position_limit"] > 1000  # it really did push on the walls


# ------------------------------------------------------------------ commands straight to the arm
def test_fast_turns_against_the_orientation_bounds_keep_the_measured_orientation_inside(make_sim_env):
    """Turning as fast as allowed, back and forth about each axis, past the bounds: the arm
    overshoots its target, and rot_tracking_margin keeps that overshoot inside the bounds
    (without it, and at 3.5 rad/s, the arm went 0.12 rad out)."""
    env = make_sim_env("task=reach", with_cameras=False)
    env.reset(seed=0)
    result = ArmAuditResult()
    truth, sim = GroundTruth(env, result), env.backend.sim
    for axis in range(3):
        for i in range(40):
            turn = np.zeros(3)
            turn[axis] = 2.0 if (i // 4) % 2 == 0 else -2.0
            rpy = np.array(quat_to_rpy(*sim.ee_pose().quat)) + turn
            env.safety.submit(Command.ee(np.concatenate([sim.ee_pose().pos, rpy_to_quat(*rpy)])))
            for _ in range(10):
                env.backend.advance(0.01)
                truth.sample()
    assert env.safety_counts["orientation_limit"] > 50
    assert result.violations["orientation"] == 0 and result.violations["box"] == 0, result.peak


def test_commands_straight_to_the_arm_exercise_every_filter_and_nothing_gets_past(make_sim_env):
    env = make_sim_env("task=pick_cube", with_cameras=False)
    result = run_arm_audit(env, commands=500)  # benchmarks/safety.py sends 10k (and reports what they find)
    assert result.unexercised == [], result.acted
    assert result.total_violations == 0, (result.violations, result.peak)


def test_joint_targets_straight_to_the_arm_are_clipped_into_the_joint_limits_and_speeds(make_sim_env):
    env = make_sim_env("task=pick_cube", with_cameras=False)
    result = run_arm_audit(env, commands=150, joint_targets=True)
    assert result.events["joint_target_limit"] > 20 and result.acted["joints"] > 20
    assert result.violations["joint_target"] == result.violations["joint_target_speed"] == 0, result.peak
    assert result.peak["joint_target"] > -1e-6  # targets past the limits did reach it, clipped onto the margin

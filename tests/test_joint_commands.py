"""Joint-space commands end to end on the simulated arm (MuJoCo): through SafeArm's chain
(joint limits less the margin, joint speed limits), the watchdog and the e-stop latch, to
the sim arm's joint servos."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.drivers.base import UnsupportedCommand
from robot_rl.messages import RosbagsTypes
from robot_rl.ros.topic_backend import TopicArm, TopicBackend
from robot_rl.safety import ArmCapabilityError, Command, SafeArm
from robot_rl.safety.limits import load_limits
from robot_rl.sim.backend import SimBackend
from robot_rl.sim.simulation import ARM_JOINTS

LIMITS = load_limits("sim_panda", ARM_JOINTS)
PERIOD = 0.1
WRIST = 6  # joint7: turning it only turns the gripper about its axis, so the arm can go to its limit
UPPER = LIMITS.joints.limits["joint7"].upper - LIMITS.joints.margin  # 2.8473: where the chain stops it
REACH = LIMITS.joints.limits["joint7"].max_velocity * PERIOD  # rad one command may ask of it


@pytest.fixture
def backend():
    b = SimBackend({}, control_period=PERIOD)
    b.reset(np.random.default_rng(0))
    yield b
    b.close()


def sent(backend: SimBackend) -> np.ndarray:
    """The joint targets the sim's servos were last given."""
    return backend.sim.data.ctrl[backend.sim.arm_ctrl].copy()


def test_the_sim_arm_follows_a_joint_command_through_the_chain(backend):
    arm = backend.arm
    assert arm.takes_joint_commands and arm.senses_force
    q0 = backend.sim.arm_q()
    target = q0.copy()
    target[0] += 0.15  # the base turns 0.15 rad: inside the limits and one command's reach
    target[WRIST] -= 0.1
    for _ in range(10):
        arm.command_joints(target)
        backend.advance(PERIOD)
    assert not arm.halted and not arm.estop.latched
    assert np.allclose(sent(backend), target)  # inside every limit: sent unchanged
    q = backend.sim.arm_q()
    assert np.abs(q - target).max() < 0.01 < np.abs(q0 - target).max()  # it got there
    assert [e.reason for e in arm.take_events()] == []


def test_an_out_of_limit_joint_target_is_clipped_and_reported(backend):
    arm = backend.arm
    q0 = backend.sim.arm_q()
    target = q0.copy()
    target[WRIST] = 4.0  # beyond the joint's limit (2.8973), let alone its margin
    sent_wrist, reasons = [], []
    for _ in range(30):
        before = backend.sim.arm_q()[WRIST]
        arm.command_joints(target)
        sent_wrist.append(sent(backend)[WRIST])
        assert sent_wrist[-1] <= min(UPPER, before + REACH) + 1e-9  # the limit less the margin, and the speed limit
        backend.advance(PERIOD)
        reasons += [e.reason for e in arm.take_events()]
    assert "joint_target_limit" in reasons and set(reasons) <= {"joint_target_limit", "joint_overspeed"}
    assert arm.counts["joint_target_limit"] >= 1
    assert sent_wrist[0] == pytest.approx(q0[WRIST] + REACH)  # the first command: one period's travel
    assert max(sent_wrist) == pytest.approx(UPPER)  # then the limit less the margin, never the asked-for 4.0
    q = backend.sim.arm_q()
    assert abs(q[WRIST] - UPPER) < 0.01  # the arm went there and stayed (the sim's own limit is 2.8973)
    others = np.delete(np.arange(len(q)), WRIST)
    assert np.abs(q[others] - q0[others]).max() < 0.02  # the other joints held where they were asked to


def test_joint_commands_feed_the_watchdog_and_the_latch_holds_them(backend):
    arm = backend.arm
    q0 = backend.sim.arm_q()
    target = q0.copy()
    target[0] += 0.1
    for _ in range(5):  # commands flowing: the watchdog stays quiet
        arm.command_joints(target)
        backend.advance(PERIOD)
    assert not arm.halted
    backend.advance(1.0)  # they stop: halted once, after the timeout
    assert arm.halted and arm.counts["command_timeout"] == 1
    arm.estop.trigger("operator", "test")
    here = backend.sim.arm_q()
    far = here.copy()
    far[0] -= 0.2
    for _ in range(5):
        assert arm.submit(Command.joint(far)) == Command(hold=True)  # latched: a hold, whatever was asked
        backend.advance(PERIOD)
    assert np.abs(backend.sim.arm_q() - here).max() < 0.005
    assert arm.counts["estop_latched"] == 5
    arm.estop.reset()
    arm.command_joints(far)
    backend.advance(PERIOD)
    assert backend.sim.arm_q()[0] < here[0] - 0.05  # moving again


def test_a_malformed_joint_command_holds_instead_of_reaching_the_driver(backend):
    arm = backend.arm
    here = backend.sim.arm_q()
    assert arm.submit(Command.joint([0.0] * 6)) == Command(hold=True)  # 6 targets for 7 joints
    assert arm.submit(Command.joint([*here[:6], np.nan])) == Command(hold=True)
    assert [e.reason for e in arm.take_events()] == ["non_finite_command", "non_finite_command"]
    assert not arm.estop.latched


def test_the_arm_behind_ros_topics_refuses_joint_commands_clearly():
    arm = TopicArm(ARM_JOINTS, np.array([0.45, 0, 0.2, 0, 1, 0, 0]), RosbagsTypes("jazzy"), send=lambda msg: None)
    assert not arm.takes_joint_commands
    with pytest.raises(UnsupportedCommand, match="end-effector targets only: arm_node has no joint command topic"):
        arm.command_joints(np.zeros(7))
    with pytest.raises(ArmCapabilityError, match=r"^the arm behind ROS topics \(arm_node\) takes no joint commands"):
        SafeArm.from_limits(arm, LIMITS, PERIOD, clock=lambda: 0.0, joint_commands=True)
    backend = TopicBackend({}, arm, LIMITS, PERIOD)  # the actor sends poses only: it starts
    with pytest.raises(ArmCapabilityError, match="takes no joint commands"):
        backend.arm.command_joints(np.zeros(7))  # refused before anything is sent or latched
    assert not backend.arm.estop.latched

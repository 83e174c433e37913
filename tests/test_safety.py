"""The safety chain on its own: property tests over arbitrary commands and states, the
watchdog on a simulated clock, the e-stop latch and the limits file checks."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_rl.drivers.base import Arm, ArmState, GripperState, UnsupportedCommand
from robot_rl.safety import (
    HOLD,
    ArmCapabilityError,
    Command,
    RobotState,
    SafeArm,
    SafetyLimitsError,
    default_chain,
    load_limits,
)
from robot_rl.safety.command_filters import ContactBackoff
from robot_rl.safety.limits import limits_path
from robot_rl.safety.pose_filters import Workspace, chart
from robot_rl.safety.rotations import quat_angle, quat_to_rpy, rpy_to_quat
from robot_rl.sim.simulation import ARM_JOINTS

LIMITS = load_limits("sim_panda", ARM_JOINTS)
PERIOD = 0.1
TOL = 1e-6
JOINTS = list(LIMITS.joints.limits.values())
LOWER = np.array([j.lower for j in JOINTS])
UPPER = np.array([j.upper for j in JOINTS])
QD_MAX = np.array([j.max_velocity for j in JOINTS])
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: the orientation bounds commands keep to: rot_tracking_margin inside the file's (all three bounded)
ROT_LOW = [lo + LIMITS.rot_tracking_margin for lo in LIMITS.orientation.low]
ROT_HIGH = [hi - LIMITS.rot_tracking_margin for hi in LIMITS.orientation.high]

# ------------------------------------------------------------------ strategies
wild = st.floats(allow_nan=True, allow_infinity=True)
unit = st.floats(-1.0, 1.0)


@st.composite
def quaternions(draw, near_down=True):
    if near_down and draw(st.booleans()):
        r, p, y = draw(st.floats(math.pi - 0.4, math.pi + 0.4)), draw(st.floats(-0.4, 0.4)), draw(st.floats(-2, 2))
        return rpy_to_quat(r, p, y)
    q = np.array([draw(unit) for _ in range(4)])
    return tuple((q / np.linalg.norm(q)).tolist()) if np.linalg.norm(q) > 1e-3 else (1.0, 0.0, 0.0, 0.0)


@st.composite
def states(draw):
    pos = [draw(st.floats(0.1, 0.9)), draw(st.floats(-0.5, 0.5)), draw(st.floats(-0.05, 0.5))]
    q = [draw(st.floats(lo - 0.1, hi + 0.1)) for lo, hi in zip(LOWER, UPPER, strict=True)]
    fast = draw(st.booleans())
    dq = [draw(st.floats(-3.0, 3.0)) if fast else draw(st.floats(-0.3, 0.3)) for _ in q]
    strong = draw(st.integers(0, 4)) == 0
    wrench = [draw(st.floats(-300, 300)) if strong else draw(st.floats(-20, 20)) for _ in range(3)]
    wrench += [draw(st.floats(-2, 2)) for _ in range(3)]
    arm = ArmState(np.array(q), np.array(dq), np.array(pos + list(draw(quaternions()))), np.array(wrench), 0.0)
    return RobotState(arm, GripperState(draw(st.floats(0.0, 0.08)), 0.0))


@st.composite
def commands(draw, state):
    """Near the state, far away, huge, NaN or inf, in any part."""
    kind = draw(st.sampled_from(["near", "far", "wild"]))
    if kind == "wild":
        pose = tuple(draw(wild) for _ in range(7))
    else:
        scale = 0.05 if kind == "near" else 5.0
        pos = [p + draw(st.floats(-scale, scale)) for p in state.pos]
        pose = (*pos, *draw(quaternions()))
        if draw(st.booleans()):  # not unit length
            k = draw(st.floats(0.5, 2.0))
            pose = (*pose[:3], *(k * v for v in pose[3:]))
    joints = None
    if draw(st.integers(0, 3)) == 0:
        joints = tuple(qi + draw(st.floats(-1.0, 1.0)) for qi in state.q)
    gripper = draw(st.one_of(st.none(), st.floats(-1.0, 1.0), wild))
    return Command(pose=None if draw(st.integers(0, 5)) == 0 else pose, joints=joints, gripper=gripper)


@st.composite
def scenes(draw):
    """A chain with some history, a state, a command and the time."""
    chain = default_chain(LIMITS, PERIOD)
    state = draw(states())
    now = 10.0
    if draw(st.booleans()):  # a previous command, sent from a nearby state
        previous = draw(commands(state))
        dt = draw(st.floats(0.0, 0.3))
        chain.apply(previous, state, now - dt)
        state.chart_cache = None
    return chain, state, draw(commands(state)), now


# ------------------------------------------------------------------ the invariant
def angle_excess(angle, lo, hi):
    """How far ``angle`` is outside [lo, hi] on the circle (0 inside)."""
    if hi - lo >= 2 * math.pi:
        return 0.0
    d = (angle - lo) % (2 * math.pi)
    return 0.0 if d <= hi - lo else min(d - (hi - lo), 2 * math.pi - d)


def assert_within_limits(chain, out, state, now):
    """``out`` (from ``chain`` before its commit) satisfies every configured limit."""
    if out.hold:
        return  # stopping where it is is always within the limits
    speed, accel, grip = chain.filters[5], chain.filters[6], chain.filters[7]
    dt = PERIOD if speed.stamp is None else min(max(now - speed.stamp, 1e-3), PERIOD)
    q, dq = np.array(state.q), np.array(state.dq)
    if out.pose is not None or out.joints is not None:
        assert np.all(np.abs(dq) <= QD_MAX), "an overspeeding arm must be stopped"
    if out.pose is not None:
        pose = np.array(out.pose)
        assert pose.shape == (7,) and np.all(np.isfinite(pose))
        assert abs(np.linalg.norm(pose[3:]) - 1) < TOL
        p, move = np.array(state.pos), pose[:3] - np.array(state.pos)
        force = np.array(state.force)
        margin = LIMITS.tracking_margin  # commands keep this far inside the box
        low, high = np.array(LIMITS.workspace.low) + margin, np.array(LIMITS.workspace.high) - margin
        outside = max(np.max(low - p), np.max(p - high))
        tolerance = Workspace(low, high, LIMITS.orientation.low, LIMITS.orientation.high).tolerance
        if np.linalg.norm(force) > LIMITS.contact.max_force and outside <= tolerance:  # backing off along the force
            assert np.linalg.norm(move) <= LIMITS.contact.backoff + TOL and move @ force >= -TOL
        if outside > tolerance:
            back = np.clip(p, low, high)  # on the way back
            assert np.linalg.norm(np.cross(move, back - p)) < TOL and move @ (back - p) >= -TOL
        else:
            assert np.all(pose[:3] >= np.minimum(low, p) - TOL) and np.all(pose[:3] <= np.maximum(high, p) + TOL)
        assert np.linalg.norm(move) <= min(LIMITS.ee.max_step, LIMITS.ee.max_speed * dt) + TOL
        # acceleration: move/dt within a·dt of the last velocity, or a slower move in the same direction
        center, radius = np.array(accel.velocity) * dt, LIMITS.ee.max_acceleration * dt * dt
        if np.linalg.norm(move) > TOL:
            stretch = max(1.0, (move @ center) / (move @ move))
            assert np.linalg.norm(stretch * move - center) <= radius + TOL
        # orientation: the rotation angle is bounded, and each angle is no further out of its bounds
        # (less the margin commands keep to)
        assert quat_angle(pose[3:], state.quat) <= min(LIMITS.ee.max_rot_step, LIMITS.ee.max_rot_speed * dt) + TOL
        now_rpy, out_rpy = quat_to_rpy(*state.quat), quat_to_rpy(*pose[3:])
        for i in range(3):
            before = angle_excess(now_rpy[i], ROT_LOW[i], ROT_HIGH[i])
            assert angle_excess(out_rpy[i], ROT_LOW[i], ROT_HIGH[i]) <= max(before, 0.0) + TOL
        turn = np.array(chart(state, tuple(pose[3:]))) - np.array(state.rpy)
        center, radius = np.array(accel.rot_velocity) * dt, LIMITS.ee.max_rot_acceleration * dt * dt
        if np.linalg.norm(turn) > TOL:
            stretch = max(1.0, (turn @ center) / (turn @ turn))
            assert np.linalg.norm(stretch * turn - center) <= radius + TOL
    if out.joints is not None:
        joints, margin = np.array(out.joints), LIMITS.joints.margin
        assert np.all(joints >= np.minimum(LOWER + margin, q) - TOL)
        assert np.all(joints <= np.maximum(UPPER - margin, q) + TOL)
        assert np.all(np.abs(joints - q) <= QD_MAX * PERIOD + TOL)
    if out.gripper is not None:
        g = LIMITS.gripper
        anchor = grip.width if grip.width is not None else state.width
        gdt = PERIOD if grip.stamp is None else min(max(now - grip.stamp, 1e-3), PERIOD)
        assert math.isfinite(out.gripper)
        assert min(g.min_width, anchor) - TOL <= out.gripper <= max(g.max_width, anchor) + TOL
        assert abs(out.gripper - anchor) <= g.max_speed * gdt + TOL


def assert_same(a: Command, b: Command):
    assert a.hold == b.hold
    for x, y in ((a.pose, b.pose), (a.joints, b.joints)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_allclose(x, y, atol=1e-9)
    assert (a.gripper is None) == (b.gripper is None)
    if a.gripper is not None:
        assert a.gripper == pytest.approx(b.gripper, abs=1e-12)


# ------------------------------------------------------------------ properties
@PROPERTY
@given(scenes())
def test_output_always_satisfies_every_limit(scene):
    chain, state, command, now = scene
    out, events = chain.filter(command, state, now)
    assert_within_limits(chain, out, state, now)
    if out != command:
        assert events, "every intervention is an event"


@PROPERTY
@given(scenes())
def test_filtering_is_idempotent(scene):
    chain, state, command, now = scene
    once, _ = chain.filter(command, state, now)
    state.chart_cache = None  # judge the output afresh, as a new command would be
    twice, _ = chain.filter(once, state, now)
    assert_same(once, twice)


@st.composite
def calm_scenes(draw):
    """A resting arm well inside every limit, and a small command inside every limit too."""
    w = LIMITS.workspace
    pos = [draw(st.floats(lo + 0.05, hi - 0.05)) for lo, hi in zip(w.low, w.high, strict=True)]
    rpy = [draw(st.floats(lo + 0.05, hi - 0.05)) for lo, hi in zip(ROT_LOW, ROT_HIGH, strict=True)]
    q = [draw(st.floats(lo + 0.2, hi - 0.2)) for lo, hi in zip(LOWER, UPPER, strict=True)]
    arm = ArmState(np.array(q), np.zeros(7), np.array(pos + list(rpy_to_quat(*rpy))), np.zeros(6), 0.0)
    state = RobotState(arm, GripperState(draw(st.floats(0.0, 0.08)), 0.0))
    small = 0.9 * min(LIMITS.ee.max_acceleration * PERIOD**2, LIMITS.ee.max_step) / math.sqrt(3)
    target = [p + draw(st.floats(-small, small)) for p in pos]
    turn = 0.9 * min(LIMITS.ee.max_rot_acceleration * PERIOD**2, LIMITS.ee.max_rot_step) / 3
    target_rpy = [a + draw(st.floats(-turn, turn)) for a in rpy]
    target_rpy = [min(max(a, lo), hi) for a, lo, hi in zip(target_rpy, ROT_LOW, ROT_HIGH, strict=True)]
    joints = tuple(qi + draw(st.floats(-0.1, 0.1)) for qi in q) if draw(st.booleans()) else None
    grip = min(max(state.width + draw(st.floats(-0.04, 0.04)), 0.0), 0.08)
    return state, Command((*target, *rpy_to_quat(*target_rpy)), joints, grip)


@PROPERTY
@given(calm_scenes())
def test_a_command_inside_every_limit_passes_unchanged(scene):
    state, command = scene
    chain = default_chain(LIMITS, PERIOD)
    out, events = chain.filter(command, state, 1.0)
    assert out == command and events == ()


# ------------------------------------------------------------------ individual filters
def rest_state(pos=(0.45, 0.0, 0.2), rpy=(math.pi, 0.0, 0.0), wrench=(0.0,) * 6, dq=(0.0,) * 7, width=0.08):
    q = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
    arm = ArmState(q, np.array(dq), np.array([*pos, *rpy_to_quat(*rpy)]), np.array(wrench), 0.0)
    return RobotState(arm, GripperState(width, 0.0))


def test_nan_anywhere_holds_the_current_pose():
    chain = default_chain(LIMITS, PERIOD)
    state = rest_state()
    for bad in (Command((0.4, math.nan, 0.2, 1, 0, 0, 0)), Command((0.4, 0, 0.2, 1, 0, 0, 0), gripper=math.inf),
                Command((0.4, 0.0, 0.2)), Command((0.4, 0, 0.2, 0, 0, 0, 0))):
        out, events = chain.apply(bad, state, 1.0)
        assert out == HOLD and events[0].filter == "finite"
    assert chain.counts["non_finite_command"] == 3 and chain.counts["zero_quaternion"] == 1


def test_orientation_bounds_wrap_through_pi():
    chain = default_chain(LIMITS, PERIOD)
    state = rest_state(rpy=(-3.0, 0.0, 0.0))  # ≡ 3.28: inside [2.89, 3.39], across the ±π seam
    inside = Command((0.45, 0.0, 0.2, *rpy_to_quat(3.0, 0.0, 0.0)))  # roll 3.0 ≡ inside [2.89, 3.39]
    out, events = chain.filter(inside, state, 1.0)
    assert not [e for e in events if e.filter == "workspace"]
    bound = 0.25 - LIMITS.rot_tracking_margin  # the tilt commands keep to
    tilted = Command((0.45, 0.0, 0.2, *rpy_to_quat(2.5, 0.0, 0.0)))  # 0.64 rad off: clipped to the bound
    state = rest_state(rpy=(math.pi - bound + 0.05, 0.0, 0.0))
    out, events = chain.filter(tilted, state, 1.0)
    assert "orientation_limit" in [e.reason for e in events]
    assert quat_angle(out.pose[3:], rpy_to_quat(math.pi, 0, 0)) == pytest.approx(bound, abs=1e-4)


def test_commands_keep_the_rot_tracking_margin_inside_the_orientation_bounds():
    """The measured orientation overshoots its target: commands stay rot_tracking_margin inside
    each bound (as they stay tracking_margin inside the box), except on an angle left free."""
    margin = LIMITS.rot_tracking_margin
    assert margin > 0
    state = rest_state(rpy=(math.pi, 0.0, 1.5))  # yaw 0.1 inside its bound of 1.6
    out, events = default_chain(LIMITS, PERIOD).filter(Command((0.45, 0.0, 0.2, *rpy_to_quat(math.pi, 0, 1.7))),
                                                       state, 1.0)
    assert quat_to_rpy(*out.pose[3:])[2] == pytest.approx(1.6 - margin)
    assert [e.reason for e in events] == ["orientation_limit"]
    free = LIMITS.narrowed(LIMITS.workspace.low, LIMITS.workspace.high)
    free.orientation.low[2], free.orientation.high[2] = -4.0, 4.0  # yaw unbounded: no margin to keep
    out, events = default_chain(free, PERIOD).filter(Command((0.45, 0.0, 0.2, *rpy_to_quat(math.pi, 0, 1.6))),
                                                     state, 1.0)
    assert quat_to_rpy(*out.pose[3:])[2] == pytest.approx(1.6) and events == ()


def test_contact_stops_and_backs_off_along_the_force():
    chain = default_chain(LIMITS, PERIOD)
    state = rest_state(pos=(0.45, 0.0, 0.05), wrench=(0.0, 0.0, 150.0, 0.0, 0.0, 0.0))  # pressed down on the table
    out, events = chain.apply(Command((0.45, 0.0, 0.0, *state.quat)), state, 1.0)
    assert events[0].reason == "contact_limit"
    assert out.pose[:3] == pytest.approx((0.45, 0.0, 0.05 + LIMITS.contact.backoff))


def test_speed_and_acceleration_limits_need_time_between_commands():
    chain = default_chain(LIMITS, PERIOD)
    state = rest_state()
    out, events = chain.apply(Command((0.55, 0.0, 0.2, *state.quat)), state, 1.0)
    assert out.pose[0] - 0.45 == pytest.approx(LIMITS.ee.max_step)  # 10 cm asked, one step given
    assert "translation_limit" in [e.reason for e in events]
    back = Command((0.35, 0.0, 0.2, *state.quat))  # full reverse at once: Δv = 0.7 m/s in 0.1 s
    out, events = chain.filter(back, state, 1.1)
    v, a = LIMITS.ee.max_step / PERIOD, LIMITS.ee.max_acceleration  # reverse by what a·dt leaves over
    assert 0.45 - out.pose[0] == pytest.approx((a * PERIOD - v) * PERIOD)
    assert "acceleration_limit" in [e.reason for e in events]
    out, events = chain.filter(Command((0.55, 0.0, 0.2, *state.quat)), state, 1.01)  # 10 ms after the last
    assert out.pose[0] - 0.45 == pytest.approx(LIMITS.ee.max_speed * 0.01)
    assert "translation_limit" in [e.reason for e in events]


def test_gripper_command_rate_is_limited():
    chain = default_chain(LIMITS, PERIOD)
    state = rest_state(width=0.08)
    out, events = chain.apply(Command(gripper=0.0), state, 1.0)
    assert out.gripper == pytest.approx(0.08 - LIMITS.gripper.max_speed * PERIOD)
    assert events[0].reason == "gripper_rate_limit"
    out, _ = chain.apply(Command(gripper=0.0), state, 1.1)
    assert out.gripper == 0.0


def test_joint_overspeed_stops_the_arm():
    chain = default_chain(LIMITS, PERIOD)
    out, events = chain.filter(Command((0.45, 0, 0.2, 0, 1, 0, 0)), rest_state(dq=(3.0, 0, 0, 0, 0, 0, 0)), 1.0)
    assert out == HOLD and events[0].reason == "joint_overspeed"


# ------------------------------------------------------------------ SafeArm: watchdog and e-stop on a fake clock
class FakeArm(Arm):
    """Records what reaches it; its state is stamped by the shared fake clock (or frozen)."""

    takes_joint_commands = True
    senses_force = True

    def __init__(self, clock):
        self.clock, self.sent, self.stops, self.frozen = clock, [], [], None
        self.joints_sent = []

    def state(self):
        stamp = self.clock() if self.frozen is None else self.frozen
        return ArmState(np.zeros(7), np.zeros(7), np.array([0.45, 0, 0.2, *rpy_to_quat(math.pi, 0, 0)]), np.zeros(6),
                        stamp)

    def command(self, target):
        self.sent.append((self.clock(), np.asarray(target)))

    def command_joints(self, q):
        self.joints_sent.append((self.clock(), np.asarray(q)))

    def stop(self):
        self.stops.append(self.clock())

    @property
    def home_pose(self):
        return np.array([0.45, 0, 0.2, *rpy_to_quat(math.pi, 0, 0)])


def fake_rig():
    t = [0.0]
    clock = lambda: t[0]  # noqa: E731
    arm = FakeArm(clock)
    return t, arm, SafeArm.from_limits(arm, LIMITS, PERIOD, clock)


def test_watchdog_halts_within_one_control_period_after_commands_stop():
    t, arm, safe = fake_rig()
    for k in range(10):  # 10 Hz commands for a second, the watchdog ticking every period
        t[0] = k * PERIOD
        safe.command(arm.home_pose)
        safe.tick()
    last = t[0]
    while t[0] < last + 1.0:  # commands stop; time goes on
        t[0] += PERIOD / 4
        safe.tick()
    timeout = LIMITS.watchdog.command_timeout
    assert len(arm.stops) == 1  # halted once, and held
    assert last + timeout < arm.stops[0] <= last + timeout + PERIOD
    assert safe.counts["command_timeout"] == 1 and safe.halted
    safe.command(arm.home_pose)  # a fresh command resumes
    assert not safe.halted and len(arm.sent) == 11


def test_stale_observation_halts_and_turns_commands_into_holds():
    t, arm, safe = fake_rig()
    safe.command(arm.home_pose)
    arm.frozen = 0.0  # the state stops updating
    for k in range(1, 6):
        t[0] = k * PERIOD
        safe.command(arm.home_pose)
        safe.tick()
    age = LIMITS.watchdog.observation_timeout
    assert arm.stops and arm.stops[0] <= age + PERIOD + 1e-9
    assert all(when <= age + 1e-9 for when, _ in arm.sent)  # nothing moved once the state was stale
    assert safe.counts["stale_observation"] >= 1


def test_a_stale_camera_halts_the_arm():
    t, arm, safe = fake_rig()
    safe.observed("front", 0.0)
    t[0] = 0.1
    safe.command(arm.home_pose)
    t[0] = 0.35
    safe.command(arm.home_pose)
    assert arm.stops == [0.35] and len(arm.sent) == 1


def test_estop_latches_until_an_explicit_reset():
    t, arm, safe = fake_rig()
    safe.estop.trigger("console", "operator pressed stop")
    assert arm.stops == [0.0]  # halted at once, before any command
    for k in range(1, 4):
        t[0] = k * PERIOD
        safe.command(arm.home_pose)
        safe.reset()  # a new episode does not clear it
    assert safe.estop.latched and arm.sent == [] and len(arm.stops) == 4
    assert safe.counts["estop_latched"] == 3
    safe.estop.reset()
    safe.command(arm.home_pose)
    assert len(arm.sent) == 1


def test_a_driver_fault_latches_the_estop():
    _, arm, safe = fake_rig()

    def broken(target):
        raise RuntimeError("reflex: joint 4 torque")

    arm.command = broken
    with pytest.raises(RuntimeError):
        safe.command(arm.home_pose)
    assert safe.estop.latched and safe.estop.record.source == "arm"


# ------------------------------------------------------------------ joint commands through SafeArm
def test_a_joint_command_passes_the_joint_filters_on_its_way_to_the_arm():
    t, arm, safe = fake_rig()
    inside = np.array([0.1, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0])  # FakeArm rests at q = 0 (joint4 and 6 outside!)
    safe.command_joints(inside)
    (_, q), = arm.joints_sent
    margin = LIMITS.joints.margin
    assert np.all(q <= UPPER - margin + TOL) and np.all(q >= LOWER + margin - TOL)
    assert np.all(np.abs(q) <= QD_MAX * PERIOD + TOL)  # and within one period's travel from q = 0
    assert q[0] == pytest.approx(0.1) and q[3] == pytest.approx(-QD_MAX[3] * PERIOD)
    assert q[5] == pytest.approx(QD_MAX[5] * PERIOD)  # joint6's range starts above 0: led back towards it
    assert [e.reason for e in safe.take_events()] == ["joint_target_limit"]
    assert arm.sent == [] and arm.stops == []  # a joint command reaches command_joints only
    t[0] = 0.15
    safe.tick()
    assert not safe.halted  # a joint command counts for the watchdog like a pose


def test_the_latch_and_a_stale_state_turn_joint_commands_into_holds():
    t, arm, safe = fake_rig()
    safe.estop.trigger("console", "stop")
    safe.command_joints(np.zeros(7))
    assert arm.joints_sent == [] and len(arm.stops) == 2
    safe.estop.reset()
    arm.frozen = 0.0
    t[0] = 1.0
    safe.command_joints(np.zeros(7))
    assert arm.joints_sent == [] and safe.counts["stale_observation"] == 1


class PoseOnlyArm(FakeArm):
    takes_joint_commands = False

    def command_joints(self, q):
        raise UnsupportedCommand("pose only")


def test_an_arm_without_joint_commands_is_refused_at_start_up_not_latched_at_run_time():
    clock = lambda: 0.0  # noqa: E731
    with pytest.raises(ArmCapabilityError, match=r"^PoseOnlyArm takes no joint commands") as e:
        SafeArm.from_limits(PoseOnlyArm(clock), LIMITS, PERIOD, clock, joint_commands=True)
    assert "\n" not in str(e.value)
    arm = PoseOnlyArm(clock)
    safe = SafeArm.from_limits(arm, LIMITS, PERIOD, clock)  # nobody asked for joint commands: it starts
    with pytest.raises(ArmCapabilityError, match="takes no joint commands"):
        safe.command_joints(np.zeros(7))
    assert not safe.estop.latched and arm.stops == [] and safe.take_events() == []  # refused, nothing sent


class NumbArm(FakeArm):
    senses_force = False  # an xArm without its F/T sensor, say

    @property
    def label(self):
        return "the numb arm"


def test_a_contact_limit_on_an_arm_that_cannot_sense_force_is_refused(tmp_path):
    clock = lambda: 0.0  # noqa: E731
    with pytest.raises(ArmCapabilityError) as e:
        SafeArm.from_limits(NumbArm(clock), LIMITS, PERIOD, clock)
    message = str(e.value)
    assert message.startswith("safety limits sim_panda.yaml: 'contact' ")
    assert "the numb arm cannot sense force" in message
    assert "contact: none" in message and "\n" not in message
    path = tmp_path / "numb.yaml"
    path.write_text(without_contact(GOOD) + "contact: none   # no force sensor\n")
    limits = load_limits(str(path), ARM_JOINTS)
    assert limits.contact is None and limits.source == "numb.yaml"
    assert default_chain(limits, PERIOD).find(ContactBackoff) == []
    assert default_chain(LIMITS, PERIOD).find(ContactBackoff)
    safe = SafeArm.from_limits(NumbArm(clock), limits, PERIOD, clock)
    safe.command(safe.home_pose)  # said out loud: it runs, without a contact limit
    assert len(safe.arm.sent) == 1


def without_contact(text):
    lines, out, skipping = text.splitlines(keepends=True), [], False
    for line in lines:
        if line.startswith("contact:"):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        out.append(line)
    return "".join(out)


@pytest.mark.parametrize(("contact", "message"), [
    ("contact:\n", "'contact' is empty: give max_force, max_torque and backoff, or write 'contact: none'"),
    ("contact: off\n", "'contact' must be the contact limits (max_force, max_torque, backoff) or 'none', got False"),
    ("contact: nothing\n", "or 'none', got 'nothing'"),
    ("contact:\n  max_force: 10.0\n  max_torque: 1.0\n", "'contact.backoff'"),
])
def test_turning_the_contact_limit_off_must_be_said_out_loud(tmp_path, contact, message):
    path = tmp_path / "bad.yaml"
    path.write_text(without_contact(GOOD) + contact)
    with pytest.raises(SafetyLimitsError) as e:
        load_limits(str(path), ARM_JOINTS)
    assert message in str(e.value) and str(e.value).startswith("safety limits bad.yaml: ")
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ limits files
GOOD = limits_path("sim_panda").read_text()


@pytest.mark.parametrize(("edit", "message"), [
    (("joint4: {lower: -3.0718, upper: -0.0698", "joint4: {lower: 1.0, upper: -0.0698"),
     "'joints.limits.joint4' lower 1.0 > upper -0.0698"),
    (("low: [0.25, -0.35, 0.015]", "low: [0.25, 0.5, 0.015]"), "'workspace.low[1]' is above workspace.high[1]"),
    (("tracking_margin: 0.01", "tracking_margin: 0.5"), "'tracking_margin' 0.5 leaves nothing"),
    (("rot_tracking_margin: 0.07", "rot_tracking_margin: 0.3"), "'rot_tracking_margin' 0.3 leaves nothing"),
    (("rot_tracking_margin: 0.07", "rot_tracking_margin: -0.1"), "'rot_tracking_margin' must be >= 0"),
    (("    joint7: {lower: -2.8973, upper: 2.8973, max_velocity: 2.61}\n", ""), "missing joint 'joint7'"),
    (("command_timeout: 0.2", "command_timeout: -0.2"), "'watchdog.command_timeout' must be > 0 s, got -0.2"),
    (("max_step: 0.035", "max_stepp: 0.035"), "'ee.max_stepp'"),
    (("max_force: 100.0", "max_force: lots"), "'contact.max_force'"),
])
def test_bad_limits_files_fail_in_one_clear_line(tmp_path, edit, message):
    path = tmp_path / "bad.yaml"
    assert edit[0] in GOOD
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(SafetyLimitsError) as e:
        load_limits(str(path), ARM_JOINTS)
    assert message in str(e.value) and "\n" not in str(e.value) and "bad.yaml" in str(e.value)


def test_a_bad_limits_file_stops_the_config_at_load(tmp_path):
    from robot_rl.config import ConfigError
    from robot_rl.schema import load_config

    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("observation_timeout: 0.3", "observation_timeout: -1"))
    with pytest.raises(ConfigError, match=r"^invalid value for 'robot.safety': .*observation_timeout"):
        load_config([f"robot.safety={path}"])
    with pytest.raises(ConfigError, match="no safety limits file"):
        load_config(["robot.safety=nonexistent"])

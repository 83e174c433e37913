"""The operator between policy and robot: arbitration, labels, pause, and the simulated operator."""

import numpy as np
import pytest

from robot_rl.data import EpisodeStore, StoreSpec
from robot_rl.intervention.mapping import TeleopMapper
from robot_rl.intervention.wrapper import InterventionConfig, InterventionWrapper
from robot_rl.rl.actor import Actor
from robot_rl.rl.rollout import FunctionPolicy
from robot_rl.sim.operator import SimOperator, SimOperatorConfig
from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample

IDLE = TeleopSample(np.zeros(6))


class ScriptedDevice(TeleopDevice):
    """Test double of an operator's device: plays a fixed list of samples, then idles."""

    def __init__(self, samples):
        self.samples = list(samples)

    def read(self):
        return self.samples.pop(0) if self.samples else IDLE


def wrap(env, samples, **cfg):
    return InterventionWrapper(env, ScriptedDevice(samples), TeleopMapper(env.action_spec), InterventionConfig(**cfg))


POLICY_ACTION = np.array([0.0, 0.0, 0.5, -1.0], np.float32)


def test_operator_wins_exactly_when_active_and_both_actions_are_stored(make_sim_env, tmp_path):
    env = make_sim_env("task=reach", "task.max_steps=6", with_cameras=False)
    push = TeleopSample(np.array([1.0, 0, 0, 0, 0, 0]))
    tiny = TeleopSample(np.array([0.01, 0, 0, 0, 0, 0]))  # inside the deadzone
    button = TeleopSample(np.zeros(6), events=frozenset({TeleopEvent.INTERVENE}))
    wrapped = wrap(env, [IDLE, push, tiny, button, push, IDLE])
    store = EpisodeStore.create(tmp_path / "s.zarr", StoreSpec.from_spaces(env.observation_space, 4))
    actor = Actor(wrapped, FunctionPolicy(lambda obs: POLICY_ACTION), store=store)
    actor.run(max_episodes=1)
    episode = store.load_episode(0)
    assert episode["intervention"].tolist() == [False, True, False, True, True, False]
    np.testing.assert_array_equal(episode["policy_action"], np.tile(POLICY_ACTION, (6, 1)))
    executed = episode["action"]
    np.testing.assert_array_equal(executed[[0, 2, 5]], np.tile(POLICY_ACTION, (3, 1)))
    np.testing.assert_allclose(executed[1], [1.0, 0, 0, -1.0])  # the operator's push, gripper kept open
    np.testing.assert_allclose(executed[3], [0, 0, 0, -1.0])  # button alone: operator holds the arm
    assert actor.episodes[0].interventions == 3


def test_intervention_steps_land_in_both_buffers(make_sim_env):
    from robot_rl.rl.agent import SACAgent
    from robot_rl.rl.learner import Learner
    from robot_rl.schema.training import AgentConfig, LearnerConfig

    env = make_sim_env("task=reach", "task.max_steps=5", "cameras.front.size=[16,16]",
                       "cameras.wrist.size=[16,16]")
    push = TeleopSample(np.array([0, 1.0, 0, 0, 0, 0]))
    wrapped = wrap(env, [IDLE, push, push, IDLE, push])
    agent = SACAgent(env.observation_space, 4, AgentConfig(hidden=[16, 16]))
    learner = Learner(agent, StoreSpec.from_spaces(env.observation_space, 4), LearnerConfig(capacity=100))
    actor = Actor(wrapped, FunctionPolicy(lambda obs: POLICY_ACTION), send=lambda r: learner.ingest("a", [r]))
    actor.run(max_episodes=1)
    assert len(learner.online) == 5
    assert len(learner.demo) == 3  # the operator's steps are demonstrations too
    batch = learner.demo.sample(32, np.random.default_rng(0))
    assert batch["intervention"].all()


@pytest.mark.parametrize(("event", "ends_as"), [(TeleopEvent.SUCCESS, "terminated"),
                                                 (TeleopEvent.FAILURE, "truncated"),
                                                 (TeleopEvent.RESET, "truncated")])
def test_labels_and_reset_end_the_episode(make_sim_env, event, ends_as):
    env = make_sim_env("task=reach", with_cameras=False)
    wrapped = wrap(env, [IDLE, TeleopSample(np.zeros(6), events=frozenset({event}))])
    wrapped.reset(seed=0)
    wrapped.step(POLICY_ACTION)
    _, _, terminated, truncated, info = wrapped.step(POLICY_ACTION)
    assert {"terminated": terminated, "truncated": truncated}[ends_as] and not (terminated and truncated)
    expected_label = {TeleopEvent.SUCCESS: 1, TeleopEvent.FAILURE: -1, TeleopEvent.RESET: 0}[event]
    assert info["label"] == expected_label


def test_labels_can_be_recorded_without_ending_the_episode(make_sim_env):
    env = make_sim_env("task=reach", with_cameras=False)
    wrapped = wrap(env, [TeleopSample(np.zeros(6), events=frozenset({TeleopEvent.SUCCESS}))], end_on_label=False)
    wrapped.reset(seed=0)
    _, _, terminated, truncated, info = wrapped.step(POLICY_ACTION)
    assert info["label"] == 1 and not terminated and not truncated


def test_pause_holds_the_arm_and_records_nothing(make_sim_env, tmp_path):
    env = make_sim_env("task=reach", "task.max_steps=20", with_cameras=False)
    pause = TeleopSample(np.zeros(6), events=frozenset({TeleopEvent.PAUSE}))
    wrapped = wrap(env, [IDLE, pause, IDLE, IDLE, pause, IDLE])
    store = EpisodeStore.create(tmp_path / "s.zarr", StoreSpec.from_spaces(env.observation_space, 4))
    actor = Actor(wrapped, FunctionPolicy(lambda obs: np.array([1.0, 0, 0, -1], np.float32)), store=store)
    actor.step()  # recorded
    before = env.backend.sim.ee_pose().pos
    for _ in range(3):  # pause, then two idle steps while paused: the policy pushes, the arm holds
        actor.step()
    np.testing.assert_allclose(env.backend.sim.ee_pose().pos, before, atol=3e-3)
    actor.step()  # resume (this step is recorded again)
    assert actor.total_steps == 2


def test_simulated_operator_guides_a_stuck_policy_and_its_budget_shrinks(make_sim_env):
    env = make_sim_env("task=pick_cube", with_cameras=False)
    operator = SimOperator(env, SimOperatorConfig(budget_start=1.0, budget_end=0.0, decay_episodes=4))
    wrapped = InterventionWrapper(env, operator, TeleopMapper(env.action_spec))
    stuck = FunctionPolicy(lambda obs: np.array([0, 0, 0, -1], np.float32))  # never moves
    actor = Actor(wrapped, stuck, seed=0)
    episodes = actor.run(max_episodes=5)
    assert episodes[0].success and episodes[0].interventions > 5  # the operator solved it for the policy
    assert episodes[-1].interventions == 0  # budget spent: the operator lets go
    assert operator.budget == 0.0


def test_simulated_operator_leaves_a_good_policy_alone(make_sim_env):
    env = make_sim_env("task=pick_cube", with_cameras=False)
    from robot_rl.sim.expert import ScriptedExpert

    expert = ScriptedExpert(env)
    wrapped = InterventionWrapper(env, SimOperator(env), TeleopMapper(env.action_spec))
    actor = Actor(wrapped, FunctionPolicy(expert.act), seed=0)
    episodes = actor.run(max_episodes=3)
    assert all(e.success for e in episodes) and sum(e.interventions for e in episodes) == 0

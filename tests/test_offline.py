"""Offline training (`robot-rl offline`): BC and Cal-QL updates, the command with its
checkpoints and resume, starting online training from its checkpoint, and the errors."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl.cli import main
from robot_rl.config import ConfigError
from robot_rl.data import EpisodeStore, StoreSpec
from robot_rl.env.factory import spaces_from_config
from robot_rl.rl.agent import SACAgent
from robot_rl.rl.checkpoints import CheckpointError, load_checkpoint
from robot_rl.rl.offline import MC_RETURN, OfflineUpdater, discounted_returns, load_offline_buffer
from robot_rl.robots import make_env
from robot_rl.schema import load_config
from robot_rl.schema.training import AgentConfig, OfflineConfig

CAMERAS = ["cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]", "cameras.wrist.resolution=[32,32]",
           "cameras.wrist.size=[32,32]"]
SMALL = [*CAMERAS, "agent.hidden=[32,32]", "agent.encoder_features=16", "learner.batch_size=16",
         "logging.progress_bar=false", "logging.wandb=disabled", "train.threads=1"]


def test_discounted_returns_count_the_rewards_to_go():
    np.testing.assert_allclose(discounted_returns(np.array([0, 0, 1], np.float32), 0.5), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(discounted_returns(np.array([1, 1], np.float32), 1.0), [2.0, 1.0])


# ---------------------------------------------------------------------- the updates, on synthetic data
def _agent(action_dim: int = 2, **agent) -> SACAgent:
    space = gym.spaces.Dict({"cam": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
                             "state": gym.spaces.Box(-1, 1, (3,), np.float32)})
    cfg = AgentConfig(hidden=[32, 32], encoder_features=8, augmentation_pad=0, policy_update_every=1, **agent)
    return SACAgent(space, action_dim, cfg, seed=0)


def _batch(n: int = 64, seed: int = 0, mc_return: float = 0.5) -> dict:
    """Transitions whose action is a fixed function of the state: what BC must learn."""
    rng = np.random.default_rng(seed)
    state = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    images = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
    action = np.tanh(state[:, :2] * 2).astype(np.float32)
    obs = {"cam": torch.as_tensor(images), "state": torch.as_tensor(state)}
    return {"obs": obs, "next_obs": obs, "action": torch.as_tensor(action),
            "reward": torch.ones(n), "terminated": torch.ones(n, dtype=torch.bool),
            MC_RETURN: torch.full((n,), mc_return)}


def test_bc_learns_the_recorded_actions():
    agent = _agent()
    updater = OfflineUpdater(agent, OfflineConfig(method="bc"))
    batch = _batch()
    first = updater.update(batch)["bc_loss"]
    for _ in range(300):
        last = updater.update(batch)["bc_loss"]
    assert agent.updates == 301
    assert last < first / 10


def _trained(batch: dict, **offline) -> SACAgent:
    """An agent after 150 calql updates on ``batch`` (every metric finite on the way)."""
    agent = _agent()
    updater = OfflineUpdater(agent, OfflineConfig(method="calql", **offline))
    for _ in range(150):
        metrics = updater.update(batch)
    assert all(np.isfinite(v) for v in metrics.values())
    return agent


def _features(agent: SACAgent, obs: dict) -> torch.Tensor:
    images = agent.encoder.backbone_features(agent.camera_inputs(obs, augment=False))
    return agent.encoder(images, obs["state"])


def test_calql_values_the_data_above_actions_it_never_took():
    def gap_after(cql_alpha: float) -> float:
        batch = _batch()
        agent = _trained(batch, cql_alpha=cql_alpha)
        with torch.no_grad():
            features = _features(agent, batch["obs"])
            data_q = agent.critic(features, batch["action"]).mean()
            other = -batch["action"]  # the opposite action: never in the data
            return float(data_q - agent.critic(features, other).mean())

    assert gap_after(1.0) > gap_after(0.0) + 0.5


def test_advantage_weights_follow_the_good_half_of_mixed_data():
    """Each state recorded twice: once with the action that paid (reward 1), once with its
    opposite (reward 0). Plain imitation learns their average, about 0; the advantage-weighted
    one learns the action that paid."""
    good, bad = _batch(32), _batch(32)
    bad["action"], bad["reward"], bad[MC_RETURN] = -good["action"], torch.zeros(32), torch.zeros(32)
    mixed = {k: (torch.cat([good[k], bad[k]]) if k not in ("obs", "next_obs")
                 else {c: torch.cat([good[k][c], bad[k][c]]) for c in good[k]}) for k in good}

    def error_after(advantage_weight: float) -> float:
        torch.manual_seed(0)
        agent = _trained(mixed, advantage_weight=advantage_weight)
        with torch.no_grad():
            return float((agent.policy.mode(_features(agent, good["obs"])) - good["action"]).abs().mean())

    assert error_after(10.0) < 0.5 * error_after(0.0)


def test_comma_separated_data_composes_as_one_string(tmp_path):
    """``data=A,B`` on a command line (hydra would read the comma as a sweep)."""
    stores = [tmp_path / "a.zarr", tmp_path / "b.zarr"]
    for path in stores:
        path.mkdir()
    from robot_rl.config import data_paths

    assert data_paths(load_config([f"data={stores[0]},{stores[1]}"], name="train")) == stores


def test_calibration_floors_values_and_targets_at_the_return():
    batch = _batch(mc_return=5.0)  # far above what untrained critics say
    calibrated = OfflineUpdater(_agent(), OfflineConfig(method="calql")).update(batch)
    plain = OfflineUpdater(_agent(), OfflineConfig(method="calql", calibrated=False)).update(batch)
    assert calibrated["q_policy"] >= 5.0 and calibrated["target_q"] >= 5.0  # the penalty's and the target's floor
    assert plain["q_policy"] < 1.0 and plain["target_q"] <= 1.0 + 1e-6  # reward 1, terminal


def test_the_gripper_critic_learns_offline_too():
    agent = _agent(action_dim=3, gripper_critic=True)
    batch = _batch()
    batch["action"] = torch.cat([batch["action"], torch.ones(64, 1)], dim=1)  # always "close"
    for method in ("bc", "calql"):
        updater = OfflineUpdater(agent, OfflineConfig(method=method))
        for _ in range(100):
            metrics = updater.update(batch)
        assert all(np.isfinite(v) for v in metrics.values())
    with torch.no_grad():
        obs = batch["obs"]
        features = agent.encoder(agent.encoder.backbone_features(agent.camera_inputs(obs, augment=False)), obs["state"])
        assert (agent.gripper_q(features).argmax(-1) == 2).float().mean() > 0.9


def test_the_given_actor_is_held_while_the_critics_warm_up():
    agent = _agent()
    agent.policy_frozen_until = 3  # as Learner.start_from sets it from learner.critic_warmup
    batch = _batch()
    def snapshot(module):
        return {k: v.clone() for k, v in module.state_dict().items()}

    def same(module, before) -> bool:
        return all(torch.equal(before[k], v) for k, v in module.state_dict().items())

    actor, encoder, critic = snapshot(agent.policy), snapshot(agent.encoder), snapshot(agent.critic)
    for _ in range(3):
        agent.update(batch)
    assert same(agent.policy, actor) and same(agent.encoder, encoder)  # the policy acts as it was given
    assert not same(agent.critic, critic)
    agent.update(batch)
    assert not same(agent.policy, actor) and not same(agent.encoder, encoder)


# ---------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    path = tmp_path_factory.mktemp("offline") / "demos.zarr"
    assert main(["rollout", "task=pick_cube", *CAMERAS, "policy=expert", "episodes=3", f"record={path}",
                 "logging.progress_bar=false", f"run_dir={path.parent / 'rollout'}"]) == 0
    return path


def test_offline_trains_checkpoints_evaluates_and_resumes(tmp_path, demos, capsys):
    run = tmp_path / "run"
    args = ["offline", "task=pick_cube", *SMALL, f"data={demos}", "offline.eval_every=10", "offline.eval_episodes=1",
            "offline.checkpoint_every=10", "offline.log_every=5", f"run_dir={run}", "logging.wandb=offline"]
    assert main([*args, "offline.updates=20"]) == 0
    out = capsys.readouterr().out
    assert "3 episodes" in out and "20 updates" in out and f"init={run}" in out
    state = load_checkpoint(run)
    assert state["agent"]["updates"] == 20 and [u for u, _ in state["offline"]["curve"]] == [10, 20]
    assert list((run / "wandb").glob("offline-run-*"))

    assert main([*args, "offline.updates=30"]) == 0  # the same run folder: resumes at update 20
    state = load_checkpoint(run)
    assert state["agent"]["updates"] == 30 and [u for u, _ in state["offline"]["curve"]] == [10, 20, 30]
    logged = [json.loads(line)["updates"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert logged == [5, 10, 15, 20, 25, 30]


def test_offline_rewards_can_come_from_a_reward_model(tmp_path, demos):
    assert main(["reward-model", "train", "task=pick_cube", *CAMERAS, "reward_model.name=learned_progress",
                 "reward_model.epochs=1",
                 f"data={demos}", f"out={tmp_path / 'progress.pt'}", f"run_dir={tmp_path / 'c'}",
                 "logging.progress_bar=false"]) == 0
    base = ["task=pick_cube", *SMALL, f"data={demos}"]
    spec = StoreSpec.from_spaces(*spaces_from_config(load_config(base, name="train")))
    stored, _ = load_offline_buffer(load_config(base, name="train"), spec)
    relabeled, _ = load_offline_buffer(load_config([*base, "reward_model.name=learned_progress",
                                                    f"reward_model.path={tmp_path / 'progress.pt'}"], name="train"),
                                       spec)
    rng = np.random.default_rng(0)
    a, b = stored.sample(200, rng), relabeled.sample(200, np.random.default_rng(0))
    assert set(np.unique(a["reward"])) <= {0.0, 1.0}  # the sim's sparse rewards
    assert not set(np.unique(b["reward"])) <= {0.0, 1.0}  # shaped by the reward model's progress
    np.testing.assert_allclose(a[MC_RETURN][a["terminated"]], 1.0)
    with EpisodeStore.open(demos) as store:  # the return lives in the buffer; the store is untouched
        assert MC_RETURN not in store.spec.steps


def test_offline_data_errors_are_one_line(tmp_path, demos, capsys):
    base = ["offline", "task=pick_cube", *SMALL, "offline.updates=1", f"run_dir={tmp_path / 'r'}"]
    assert main(base) == 2
    assert "name the EpisodeStore(s) to read" in capsys.readouterr().err
    assert main([*base, f"data={tmp_path / 'none.zarr'}"]) == 2
    assert "no EpisodeStore at" in capsys.readouterr().err
    # recorded at 32×32, trained at 64×64
    assert main(["offline", "task=pick_cube", "logging.progress_bar=false", f"data={demos}",
                 "offline.updates=1", f"run_dir={tmp_path / 'r2'}"]) == 2
    assert "not what this config" in capsys.readouterr().err
    assert main([*base, f"data={demos}", "offline.method=td3"]) == 2
    assert "offline" in capsys.readouterr().err


# ---------------------------------------------------------------------- from offline to online
def test_train_starts_from_an_offline_checkpoint_with_the_recordings_as_demos(tmp_path, demos, capsys):
    from robot_rl.rl.assembly import demo_sources, make_learner, random_steps

    offline = tmp_path / "offline"
    assert main(["offline", "task=pick_cube", *SMALL, f"data={demos}", "offline.updates=10", "offline.eval_every=0",
                 f"run_dir={offline}"]) == 0
    cfg = load_config(["task=pick_cube", *SMALL, f"data={demos}", f"init={offline}"], name="train")
    assert random_steps(cfg) == 0 and demo_sources(cfg, tmp_path) == [demos]
    env = make_env(cfg)
    try:
        learner = make_learner(cfg, env, tmp_path / "online" / "learner", demo_sources(cfg, tmp_path))
        want = load_checkpoint(offline)["agent"]["policy"]
        got = learner.agent.policy.state_dict()
        assert all(torch.equal(want[k], got[k]) for k in want)
        assert learner.agent.updates == 0 and len(learner.demo) > 0 and len(learner.online) == 0
        assert not learner.agent.policy_opt.state and not learner.agent.critic_opt.state  # fresh optimisers
        assert learner.agent.policy_frozen_until == cfg.learner.critic_warmup == 1000
        assert cfg.agent.bc_weight is None and learner.agent.bc_weight == 20.0  # started from demos: stays on them
        learner.agent.updates = 7
        learner.checkpoint()
        learner.close()
        # a restarted run continues from its own checkpoint, not from init
        again = make_learner(cfg, env, tmp_path / "online" / "learner", [])
        assert again.agent.updates == 7
        again.close()
    finally:
        env.close()

    assert main(["train", "task=pick_cube", *SMALL, f"data={demos}", f"init={offline}", "train.processes=1",
                 "train.env_steps=30", "train.eval_every=30", "train.eval_episodes=1",
                 "learner.warmup_transitions=10", f"run_dir={tmp_path / 'ft'}"]) == 0
    assert load_checkpoint(tmp_path / "ft")["agent"]["updates"] == 30  # the run folder's learner/checkpoint.pt

    # two processes: the actor acts with the given policy from its first step (no random warm-up,
    # never its own random weights), held through the critics' warm-up
    two = tmp_path / "two"
    code = main(["train", "task=pick_cube", *SMALL, f"data={demos}", f"init={offline}", "train.env_steps=40",
                 "train.eval_every=40", "train.eval_episodes=1", "learner.warmup_transitions=10",
                 "learner.publish_every=5", f"run_dir={two}"])
    assert code == 0, (two / "learner.log").read_text()
    assert "starting from" in (two / "learner.log").read_text()
    agent = SACAgent(*spaces_from_config(cfg), AgentConfig(**{k: v for k, v in cfg.agent.items()}))
    agent.load_state_dict(load_checkpoint(offline)["agent"])
    with EpisodeStore.open(two / "actor-0.zarr") as store:
        episode = store.load_episode(0)
    modes = np.stack([agent.act({k: v[t] for k, v in episode["obs"].items()}, deterministic=True)
                      for t in range(10)])
    assert np.abs(episode["action"][:10] - modes).mean() < 0.25  # uniform random actions: about 0.67
    capsys.readouterr()


def test_bad_init_checkpoints_are_one_line_errors(tmp_path, capsys):
    args = ["train", "task=pick_cube", *SMALL, "train.processes=1", f"run_dir={tmp_path / 'r'}"]
    assert main([*args, f"init={tmp_path / 'nothing'}"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main([*args, f"init={tmp_path / 'junk.pt'}"]) == 2
    err = capsys.readouterr().err
    assert "is not a readable checkpoint" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(CheckpointError, match="does not fit this agent"):
        other = _agent()  # other cameras and sizes than pick_cube's
        torch.save({"agent": other.state_dict()}, tmp_path / "other.pt")
        cfg = load_config(["task=pick_cube", *SMALL, f"init={tmp_path / 'other.pt'}"], name="train")
        from robot_rl.rl.assembly import make_learner

        env = make_env(cfg)
        try:
            make_learner(cfg, env, tmp_path / "l", [])
        finally:
            env.close()


def test_offline_config_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="offline"):
        load_config(["offline.updates=0"], name="train")
    with pytest.raises(ConfigError, match="offline"):
        load_config(["offline.cql_alpha=-1"], name="train")

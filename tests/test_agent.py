"""SACAgent: critic targets (terminations vs truncations, REDQ subsets), learning, the
encoder's gradient paths, weight export and checkpoints, the frozen ResNet encoder and
the DrQ shift. Tiny images and networks keep the whole file to a few seconds on a CPU."""

import io
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robot_rl.layers import random_shift
from robot_rl.rl.agent import AgentConfig, SACAgent

CAMERAS = ("front", "wrist")
STATE_DIM, ACTION_DIM = 5, 3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a small shared machine more only adds contention at these sizes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def obs_space(size: int = 16) -> gym.spaces.Dict:
    spaces = {c: gym.spaces.Box(0, 255, (size, size, 3), np.uint8) for c in CAMERAS}
    spaces["state"] = gym.spaces.Box(-1, 1, (STATE_DIM,), np.float32)
    return gym.spaces.Dict(spaces)


def make_agent(size: int = 16, seed: int = 0, **cfg) -> SACAgent:
    cfg.setdefault("hidden", [32, 32])
    return SACAgent(obs_space(size), ACTION_DIM, AgentConfig(**cfg), seed=seed)


def random_obs(g: torch.Generator, n: int, size: int) -> dict[str, torch.Tensor]:
    obs = {c: torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g) for c in CAMERAS}
    obs["state"] = torch.rand(n, STATE_DIM, generator=g) * 2 - 1
    return obs


def make_batch(n: int = 8, size: int = 16, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": random_obs(g, n, size), "next_obs": random_obs(g, n, size),
        "action": torch.rand(n, ACTION_DIM, generator=g) * 2 - 1,
        "reward": torch.randn(n, generator=g),
        "terminated": torch.zeros(n, dtype=torch.bool), "truncated": torch.zeros(n, dtype=torch.bool),
    }


def one_obs(batch: dict, i: int = 0) -> dict[str, np.ndarray]:
    return {k: v[i].numpy() for k, v in batch["obs"].items()}


def images(obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {c: obs[c].permute(0, 3, 1, 2).float() / 255.0 for c in CAMERAS}


def capture_target(monkeypatch, agent: SACAgent, batch: dict, seed: int) -> torch.Tensor:
    """The critic target ``update`` regresses onto (seen through ``F.mse_loss``)."""
    seen = []
    mse_loss = F.mse_loss

    def spy(q, target, *args, **kwargs):
        seen.append(target.detach().clone())
        return mse_loss(q, target, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "mse_loss", spy)
    torch.manual_seed(seed)
    agent.update(batch)
    monkeypatch.setattr(torch.nn.functional, "mse_loss", mse_loss)
    assert len(seen) == 1
    rows = seen[0]
    assert torch.equal(rows, rows[:1].expand_as(rows)), "every critic regresses onto the same target"
    return rows[0]


@torch.no_grad()
def expected_target(agent: SACAgent, batch: dict, seed: int) -> torch.Tensor:
    """r + γ·(1 − terminated)·(min_i Q'_i(s', a') − α·log π(a'|s')), a' drawn with the noise
    ``update`` draws after ``torch.manual_seed(seed)`` (no augmentation: pad 0)."""
    nxt = batch["next_obs"]
    torch.manual_seed(seed)
    next_action, log_prob = agent.policy.sample(agent.encoder(images(nxt), nxt["state"]))
    q = agent.target_critic(agent.target_encoder(images(nxt), nxt["state"]), next_action)
    k = agent.cfg.num_target_critics
    if k is not None:
        q = q[torch.randperm(agent.cfg.num_critics)[:k]]
    value = q.min(0).values - agent.alpha * log_prob
    not_done = 1.0 - batch["terminated"].float()
    return batch["reward"] + agent.cfg.discount * not_done * value


# ---------------------------------------------------------------------- targets
def test_targets_stop_at_terminations_and_bootstrap_through_truncations(monkeypatch):
    agent = make_agent(augmentation_pad=0, discount=0.9)
    batch = make_batch(n=8)
    #               row: 0      1     2      3     4      5     6      7
    batch["terminated"] = torch.tensor([0, 1, 0, 1, 0, 1, 0, 0], dtype=torch.bool)
    batch["truncated"] = torch.tensor([0, 0, 1, 1, 0, 0, 1, 0], dtype=torch.bool)
    expected = expected_target(agent, batch, seed=7)
    target = capture_target(monkeypatch, agent, batch, seed=7)

    terminated, truncated = batch["terminated"], batch["truncated"]
    torch.testing.assert_close(target, expected)
    # a terminal transition's target is its reward alone, truncated or not
    assert torch.equal(target[terminated], batch["reward"][terminated])
    # everything else bootstraps, time-limit ends (truncated) included, by a visible amount
    bootstrap = (target - batch["reward"])[~terminated]
    assert (bootstrap.abs() > 1e-4).all(), bootstrap
    assert (~terminated & truncated).sum() == 2


def test_zero_rewards_give_zero_targets_only_at_terminations(monkeypatch):
    agent = make_agent(augmentation_pad=0)
    with torch.no_grad():  # target critics output a large positive value whatever the input
        for q in agent.target_critic.qs:
            q[-1].weight.zero_()
            q[-1].bias.fill_(10.0)
    batch = make_batch(n=4)
    batch["reward"].zero_()
    batch["terminated"] = torch.tensor([True, False, False, True])
    batch["truncated"] = torch.tensor([False, True, False, True])
    target = capture_target(monkeypatch, agent, batch, seed=0)
    assert target[0] == 0 and target[3] == 0
    assert (target[1:3] > 5).all(), target  # γ·(10 − α log π) with γ = 0.97, α = 0.01


def test_truncated_column_is_ignored(monkeypatch):
    batch = make_batch(n=6)
    batch["terminated"] = torch.tensor([0, 1, 0, 1, 0, 0], dtype=torch.bool)
    targets = []
    for truncated in (torch.zeros(6, dtype=torch.bool), torch.ones(6, dtype=torch.bool)):
        agent = make_agent(augmentation_pad=0)
        targets.append(capture_target(monkeypatch, agent, {**batch, "truncated": truncated}, seed=3))
    assert torch.equal(*targets)


def test_redq_target_is_min_over_a_random_subset(monkeypatch):
    agent = make_agent(augmentation_pad=0, num_critics=4, num_target_critics=2)
    with torch.no_grad():  # four clearly different target critics
        for i, q in enumerate(agent.target_critic.qs):
            q[-1].bias.add_(i)
    batch = make_batch(n=8)
    batch["terminated"][:2] = True
    subset_mattered = False
    for seed in range(4):
        expected = expected_target(agent, batch, seed=seed)
        agent.cfg.num_target_critics = None
        over_all = expected_target(agent, batch, seed=seed)
        agent.cfg.num_target_critics = 2
        subset_mattered |= not torch.allclose(expected, over_all)
        torch.testing.assert_close(capture_target(monkeypatch, agent, batch, seed=seed), expected)
    assert subset_mattered


@pytest.mark.parametrize("kwargs", [
    {"num_critics": 0},
    {"num_critics": 2, "num_target_critics": 0},
    {"num_critics": 2, "num_target_critics": 3},
    {"discount": 0.0}, {"discount": 1.5}, {"tau": 0.0}, {"tau": 2.0},
    {"policy_update_every": 0}, {"init_temperature": 0.0}, {"init_temperature": -1.0},
])
def test_invalid_config_raises(kwargs):
    with pytest.raises(ValueError):
        AgentConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"num_critics": 1}, {"num_critics": 3, "num_target_critics": 1},
                                    {"num_critics": 3, "num_target_critics": 3}, {"discount": 1.0}])
def test_valid_config_edges(kwargs):
    AgentConfig(**kwargs)


def test_agent_rejects_bad_encoder_and_mismatched_cameras():
    with pytest.raises(ValueError, match="unknown encoder"):
        make_agent(encoder="vit")
    with pytest.raises(ValueError, match="resnet_path"):
        make_agent(encoder="resnet")
    space = obs_space(16)
    space.spaces["wrist"] = gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="same square image size"):
        SACAgent(space, ACTION_DIM, AgentConfig(hidden=[32, 32]))


# ---------------------------------------------------------------------- learning
def test_critic_learns_and_losses_stay_finite():
    agent = make_agent(augmentation_pad=1, critic_lr=1e-3, policy_lr=1e-3)
    batch = make_batch(n=32)
    batch["reward"] = (batch["obs"]["state"][:, 0] > 0).float()  # readable from the state
    batch["terminated"] = torch.arange(32) % 2 == 0
    history = [agent.update(batch) for _ in range(300)]
    for metrics in history:
        assert all(np.isfinite(v) for v in metrics.values()), metrics
    losses = [m["critic_loss"] for m in history]
    assert np.mean(losses[-20:]) < 0.2 * np.mean(losses[:5]), (losses[:5], losses[-20:])
    assert agent.updates == 300


def test_update_metrics_and_actor_cadence():
    agent = make_agent(policy_update_every=3)
    batch = make_batch()
    actor_steps = []
    for i in range(1, 10):
        before = [p.detach().clone() for p in agent.policy.parameters()]
        alpha = agent.alpha.item()
        metrics = agent.update(batch)
        moved = any(not torch.equal(a, p) for a, p in zip(before, agent.policy.parameters(), strict=True))
        assert set(metrics) >= {"critic_loss", "q", "target_q"}
        if i % 3 == 0:
            actor_steps.append(i)
            assert set(metrics) == {"critic_loss", "q", "target_q", "policy_loss", "alpha", "entropy"}
            assert moved and agent.alpha.item() != alpha
        else:
            assert set(metrics) == {"critic_loss", "q", "target_q"}
            assert not moved and agent.alpha.item() == alpha
        assert all(isinstance(v, float) for v in metrics.values())
    assert actor_steps == [3, 6, 9] and agent.updates == 9


def test_actor_never_moves_the_encoder_but_critics_do():
    agent = make_agent(policy_update_every=1)
    batch = make_batch()
    assert not {id(p) for p in agent.encoder.parameters()} & {
        id(p) for g in agent.policy_opt.param_groups for p in g["params"]}
    seen = {}
    update_actor = agent._update_policy

    def spy(features, *rest):
        seen["features_require_grad"] = features.requires_grad
        seen["params"] = [p.detach().clone() for p in agent.encoder.parameters()]
        seen["grads"] = [p.grad.clone() for p in agent.encoder.parameters()]
        out = update_actor(features, *rest)
        seen["params_after"] = [p.detach().clone() for p in agent.encoder.parameters()]
        seen["grads_after"] = [p.grad.clone() for p in agent.encoder.parameters()]
        return out

    agent._update_policy = spy
    initial = [p.detach().clone() for p in agent.encoder.parameters()]
    target_initial = [p.detach().clone() for p in agent.target_encoder.parameters()]
    metrics = agent.update(batch)
    assert "policy_loss" in metrics and not seen["features_require_grad"]
    for before, after in zip(seen["params"], seen["params_after"], strict=True):
        assert torch.equal(before, after)
    for before, after in zip(seen["grads"], seen["grads_after"], strict=True):
        assert torch.equal(before, after)  # no actor gradient accumulated into the encoder
    # the critic step moved the encoder, and the target encoder followed by Polyak averaging
    assert any(not torch.equal(a, b) for a, b in zip(initial, seen["params"], strict=True))
    tau = agent.cfg.tau
    for t0, t1, online in zip(target_initial, agent.target_encoder.parameters(), agent.encoder.parameters(),
                              strict=True):
        torch.testing.assert_close(t1, t0 + tau * (online - t0))


# ---------------------------------------------------------------------- weights
def test_policy_arrays_round_trip_reproduces_actions():
    source = make_agent(seed=0)
    batch = make_batch()
    for _ in range(4):  # move away from the initialisation
        source.update(batch)
    arrays = source.policy_arrays()
    assert arrays and all(k.split(".")[0] in ("encoder", "policy") for k in arrays)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in arrays.values())
    fresh = make_agent(seed=1)
    obs = one_obs(batch)
    assert not np.array_equal(fresh.act(obs, deterministic=True), source.act(obs, deterministic=True))
    fresh.load_policy_arrays(arrays)
    for i in range(3):
        action = source.act(one_obs(batch, i), deterministic=True)
        assert action.shape == (ACTION_DIM,) and action.dtype == np.float32
        assert np.abs(action).max() < 1
        np.testing.assert_array_equal(fresh.act(one_obs(batch, i), deterministic=True), action)


def test_load_policy_arrays_rejects_wrong_weights_naming_the_key():
    agent = make_agent()
    arrays = agent.policy_arrays()
    key = "policy.net.0.weight"
    missing = {k: v for k, v in arrays.items() if k != key}
    with pytest.raises(ValueError, match=re.escape("net.0.weight")):
        agent.load_policy_arrays(missing)
    with pytest.raises(ValueError, match=re.escape(key)):
        agent.load_policy_arrays({**arrays, key: arrays[key][:, :-1]})
    with pytest.raises(ValueError, match="bogus"):
        agent.load_policy_arrays({**arrays, "encoder.bogus": np.zeros(3, np.float32)})
    with pytest.raises(ValueError):  # weights of an agent with other hidden sizes
        agent.load_policy_arrays(make_agent(hidden=[16, 16]).policy_arrays())


def test_state_dict_round_trip_resumes_identically():
    batch = make_batch()
    a = make_agent(seed=0, policy_update_every=2)
    for _ in range(5):
        a.update(batch)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)  # the way Learner.checkpoint writes it
    buffer.seek(0)
    b = make_agent(seed=1, policy_update_every=2)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    assert b.updates == a.updates == 5
    assert b.log_alpha.item() == a.log_alpha.item()
    for name in ("encoder", "critic", "policy", "target_encoder", "target_critic"):
        for (k, va), vb in zip(getattr(a, name).state_dict().items(), getattr(b, name).state_dict().values(),
                               strict=True):
            assert torch.equal(va, vb), f"{name}.{k}"
    for name in ("critic_opt", "policy_opt", "alpha_opt"):
        sa, sb = getattr(a, name).state_dict()["state"], getattr(b, name).state_dict()["state"]
        assert sa.keys() == sb.keys() and sa
        for k in sa:
            for field in sa[k]:
                assert torch.equal(sa[k][field], sb[k][field]), f"{name}[{k}].{field}"
    # resumed training matches uninterrupted training step for step (Adam moments included)
    for _ in range(2):
        torch.manual_seed(5)
        ma = a.update(batch)
        torch.manual_seed(5)
        mb = b.update(batch)
        assert ma == mb
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert b.updates == 7


# ---------------------------------------------------------------------- frozen ResNet encoder
@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory):
    from transformers import ResNetConfig, ResNetModel

    path = tmp_path_factory.mktemp("resnet")
    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(config).save_pretrained(path)
    return path


def test_resnet_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "no_such_resnet"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        make_agent(size=32, encoder="resnet", resnet_path=str(missing))


def test_resnet_backbone_is_frozen_and_left_out_of_policy_weights(tiny_resnet):
    agent = make_agent(size=32, encoder="resnet", resnet_path=str(tiny_resnet), policy_update_every=1)
    backbones = (agent.encoder.backbone, agent.target_encoder.backbone)
    assert all(not p.requires_grad for b in backbones for p in b.parameters())
    assert not agent.encoder.backbone.training  # BatchNorm statistics stay put
    trained = {id(p) for g in agent.critic_opt.param_groups for p in g["params"]}
    assert not trained & {id(p) for p in agent.encoder.backbone.parameters()}
    before = {k: v.clone() for k, v in agent.encoder.backbone.state_dict().items()}
    heads = [p.detach().clone() for p in agent.encoder.heads.parameters()]

    batch = make_batch(n=4, size=32)
    for _ in range(3):
        metrics = agent.update(batch)
        assert all(np.isfinite(v) for v in metrics.values())
    for backbone in backbones:  # parameters and buffers (running statistics) alike
        for k, v in backbone.state_dict().items():
            assert torch.equal(v, before[k]), k
    assert any(not torch.equal(a, b) for a, b in zip(heads, agent.encoder.heads.parameters(), strict=True))

    arrays = agent.policy_arrays()
    assert arrays and not [k for k in arrays if "backbone" in k]
    fresh = make_agent(size=32, seed=3, encoder="resnet", resnet_path=str(tiny_resnet))
    fresh.load_policy_arrays(arrays)
    obs = one_obs(batch)
    np.testing.assert_array_equal(fresh.act(obs, deterministic=True), agent.act(obs, deterministic=True))


# ---------------------------------------------------------------------- DrQ shift
def test_random_shift_is_an_integer_shift_of_a_replicate_padded_image():
    pad, n, h, w = 2, 64, 9, 7
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=g)
    torch.manual_seed(0)
    shifted = random_shift(images, pad)
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    padded = F.pad(images.permute(0, 3, 1, 2).float(), (pad, pad, pad, pad), mode="replicate")
    padded = padded.permute(0, 2, 3, 1).to(torch.uint8)
    offsets = set()
    for i in range(n):
        found = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                 if torch.equal(shifted[i], padded[i, dy:dy + h, dx:dx + w])]
        assert len(found) == 1, f"image {i} is not an exact crop of its padded self"
        offsets.add(found[0])
    assert len(offsets) > 5  # each image draws its own offset
    assert random_shift(images, 0) is images
    assert torch.equal(random_shift(images, -1), images)


def test_both_shift_kernels_make_the_same_crops():
    """The CPU path (pad, then copy windows) and the accelerator path (one gather) agree."""
    from robot_rl.layers import shift_by_copy, shift_by_gather

    pad, n, h, w = 4, 32, 12, 10
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=g)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=g)
    offsets[:4] = torch.tensor([[0, 0], [2 * pad, 2 * pad], [0, 2 * pad], [pad, pad]])  # the corners and no shift
    assert torch.equal(shift_by_copy(images, offsets, pad), shift_by_gather(images, offsets, pad))
    assert torch.equal(shift_by_copy(images, offsets, pad)[3], images[3])


# ---------------------------------------------------------------------- gripper critic
def test_gripper_choice_maps_commands_to_open_stay_close():
    from robot_rl.rl.agent import gripper_choice

    commands = torch.tensor([-1.0, -0.6, -0.5, 0.0, 0.5, 0.51, 1.0])
    assert gripper_choice(commands).tolist() == [0, 0, 1, 1, 1, 2, 2]


def test_gripper_critic_acts_with_discrete_gripper_commands():
    agent = make_agent(gripper_critic=True, gripper_epsilon=0.0)
    assert agent.continuous_dim == ACTION_DIM - 1
    action = agent.act(one_obs(make_batch()), deterministic=True)
    assert action.shape == (ACTION_DIM,) and action[-1] in (-1.0, 0.0, 1.0)
    assert any(k.startswith("gripper_q.") for k in agent.policy_arrays())
    metrics = agent.update(make_batch())
    assert np.isfinite(metrics["gripper_loss"])


def _gripper_batch(rewards_by_choice: dict[int, float], n: int = 48) -> dict:
    batch = make_batch(n=n)
    choices = torch.arange(n) % 3
    batch["action"][:, -1] = torch.tensor([-1.0, 0.0, 1.0])[choices]
    batch["reward"] = torch.tensor([rewards_by_choice[int(c)] for c in choices])
    batch["terminated"] = torch.ones(n, dtype=torch.bool)  # target = (penalised) reward alone
    return batch


def _preferred_choice(agent: SACAgent, batch: dict) -> int:
    with torch.no_grad():
        images = agent.camera_inputs(batch["obs"], augment=False)
        q = agent.gripper_q(agent.encoder(images, batch["obs"]["state"].float()))
    return int(q.mean(0).argmax())


def test_gripper_critic_learns_the_rewarded_choice_and_pays_for_toggles():
    agent = make_agent(gripper_critic=True, augmentation_pad=0, gripper_penalty=0.2)
    rewarded = _gripper_batch({0: 0.0, 1: 0.0, 2: 1.0})
    for _ in range(150):
        agent.update(rewarded)
    assert _preferred_choice(agent, rewarded) == 2  # close pays

    agent = make_agent(gripper_critic=True, augmentation_pad=0, gripper_penalty=0.2)
    indifferent = _gripper_batch({0: 0.0, 1: 0.0, 2: 0.0})
    for _ in range(150):
        agent.update(indifferent)
    assert _preferred_choice(agent, indifferent) == 1  # with nothing to gain, opening or closing only costs


def test_gripper_critic_state_round_trip(tmp_path):
    agent = make_agent(gripper_critic=True)
    agent.update(make_batch())
    torch.save(agent.state_dict(), tmp_path / "c.pt")
    other = make_agent(gripper_critic=True, seed=3)
    other.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=True))
    for a, b in zip(agent.gripper_q.parameters(), other.gripper_q.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bc_weight_imitates_the_demo_rows_only():
    from robot_rl.rl.agent import DEMO_KEY

    def imitation_error(agent, batch) -> float:
        with torch.no_grad():
            obs = batch["obs"]
            features = agent.encoder(agent.encoder.backbone_features(agent.camera_inputs(obs, augment=False)),
                                     obs["state"].float())
            return float(((agent.policy.mode(features) - batch["action"]) ** 2).mean())

    def train(bc_weight: float, demo_rows: bool) -> SACAgent:
        agent = make_agent(policy_update_every=1, augmentation_pad=0, bc_weight=bc_weight)
        batch = {**make_batch(), DEMO_KEY: torch.full((8,), demo_rows)}
        for _ in range(150):
            agent.update(batch)
        return agent

    batch = make_batch()
    pure, marked = train(0.0, True), train(5.0, True)
    assert imitation_error(marked, batch) < imitation_error(pure, batch) / 3
    unmarked = train(5.0, False)  # no demo rows: exactly SAC
    assert all(torch.equal(a, b) for a, b in zip(unmarked.policy.state_dict().values(),
                                                 pure.policy.state_dict().values(), strict=True))


def test_a_checkpoint_written_before_the_policy_rename_still_loads():
    a = make_agent(seed=3)
    old = {{"policy": "actor", "policy_opt": "actor_opt", "policy_frozen_until": "actor_frozen_until"}.get(k, k): v
           for k, v in a.state_dict().items()}
    b = make_agent(seed=4)
    b.load_state_dict(old)
    assert all(torch.equal(x, y) for x, y in zip(a.policy.state_dict().values(), b.policy.state_dict().values(),
                                                 strict=True))

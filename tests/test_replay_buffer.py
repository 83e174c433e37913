import threading

import numpy as np
import pytest
import torch

from robot_rl.data.episode_store import EpisodeStore
from robot_rl.data.replay_buffer import ReplayBuffer
from robot_rl.data.sampling import BatchPrefetcher, MixtureSampler
from robot_rl.data.spec import KeySpec, StoreSpec, default_step_keys


def tagged_spec() -> StoreSpec:
    """``state`` = (episode id, step in episode, tag) so a sampled row says where it came from."""
    obs = {"front": KeySpec((6, 6, 3), "uint8"), "wrist": KeySpec((6, 6, 3), "uint8"),
           "state": KeySpec((3,), "float32")}
    return StoreSpec(obs, default_step_keys(2))


def tagged_episode(rng, episode_id: int, length: int, tag: float = 0.0) -> dict:
    j = np.arange(length + 1, dtype=np.float32)
    return {
        "obs": {
            "front": rng.integers(0, 256, (length + 1, 6, 6, 3), dtype=np.uint8),
            "wrist": rng.integers(0, 256, (length + 1, 6, 6, 3), dtype=np.uint8),
            "state": np.stack([np.full_like(j, episode_id), j, np.full_like(j, tag)], 1),
        },
        "action": rng.standard_normal((length, 2)).astype(np.float32),
        "policy_action": rng.standard_normal((length, 2)).astype(np.float32),
        "reward": rng.standard_normal(length).astype(np.float32),
        "terminated": np.arange(length) == length - 1 if episode_id % 2 else np.zeros(length, bool),
        "truncated": np.arange(length) == length - 1 if episode_id % 2 == 0 else np.zeros(length, bool),
        "intervention": rng.random(length) < 0.5,
        "label": rng.integers(-1, 2, length).astype(np.int8),
        "stamp": rng.random(length),
    }


def check_batch(batch, episodes: dict[int, dict]) -> None:
    """Every sampled row equals the recorded transition it claims to be, bit for bit."""
    to_np = (lambda x: x.cpu().numpy()) if isinstance(batch["reward"], torch.Tensor) else np.asarray
    state, next_state = to_np(batch["obs"]["state"]), to_np(batch["next_obs"]["state"])
    for row in range(len(state)):
        ep_id, j = int(state[row, 0]), int(state[row, 1])
        ep = episodes[ep_id]
        assert next_state[row, 0] == ep_id and next_state[row, 1] == j + 1, "transition crosses episodes"
        for key in ("front", "wrist", "state"):
            assert np.array_equal(to_np(batch["obs"][key][row]), ep["obs"][key][j])
            assert np.array_equal(to_np(batch["next_obs"][key][row]), ep["obs"][key][j + 1])
        for key in ("action", "policy_action", "reward", "terminated", "truncated", "intervention", "label", "stamp"):
            assert to_np(batch[key][row]).tobytes() == np.asarray(ep[key][j]).tobytes(), key


def filled_buffer(n_episodes=20, capacity=1000, seed=0, device=None, tag=0.0):
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(tagged_spec(), capacity, device=device)
    episodes = {}
    for i in range(n_episodes):
        episodes[i] = tagged_episode(rng, i, int(rng.integers(1, 15)), tag)
        buffer.add_episode(episodes[i])
    return buffer, episodes


def test_sampled_batch_equals_recorded_transitions():
    buffer, episodes = filled_buffer()
    assert len(buffer) == sum(len(e["action"]) for e in episodes.values())
    batch = buffer.sample(500, np.random.default_rng(1))
    check_batch(batch, episodes)
    assert batch["obs"]["front"].dtype == np.uint8 and batch["terminated"].dtype == bool


def test_terminated_and_truncated_stay_apart():
    buffer, episodes = filled_buffer()
    batch = buffer.sample(2000, np.random.default_rng(2))
    ends = batch["next_obs"]["state"][:, 1] == np.array([len(episodes[int(e)]["action"])
                                                         for e in batch["obs"]["state"][:, 0]])
    odd = batch["obs"]["state"][:, 0] % 2 == 1
    assert np.array_equal(batch["terminated"], ends & odd)
    assert np.array_equal(batch["truncated"], ends & ~odd)
    assert batch["truncated"].any() and batch["terminated"].any()


def test_torch_resident_buffer_samples_the_same_as_numpy():
    numpy_buffer, episodes = filled_buffer()
    torch_buffer, _ = filled_buffer(device="cpu")
    a = numpy_buffer.sample(300, np.random.default_rng(3))
    b = torch_buffer.sample(300, np.random.default_rng(3))
    assert isinstance(b["obs"]["front"], torch.Tensor) and b["obs"]["front"].dtype == torch.uint8
    np.testing.assert_array_equal(a["obs"]["front"], b["obs"]["front"].numpy())
    np.testing.assert_array_equal(a["next_obs"]["state"], b["next_obs"]["state"].numpy())
    check_batch(b, episodes)


def test_live_steps_match_whole_episode_adds():
    rng = np.random.default_rng(4)
    episode = tagged_episode(rng, 0, 9)
    live, bulk = ReplayBuffer(tagged_spec(), 50), ReplayBuffer(tagged_spec(), 50)
    bulk.add_episode(episode)
    live.begin_episode({k: v[0] for k, v in episode["obs"].items()})
    for j in range(9):
        live.add_step(obs={k: v[j + 1] for k, v in episode["obs"].items()},
                      **{k: episode[k][j] for k in episode if k != "obs"})
    live.end_episode()
    a, b = live.sample(100, np.random.default_rng(5)), bulk.sample(100, np.random.default_rng(5))
    for key in ("action", "reward", "truncated", "stamp"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a["next_obs"]["front"], b["next_obs"]["front"])
    check_batch(a, {0: episode})
    with pytest.raises(ValueError, match="action"):
        live.begin_episode({k: v[0] for k, v in episode["obs"].items()})
        live.add_step(obs={k: v[1] for k, v in episode["obs"].items()}, action=np.zeros(3, np.float32),
                      reward=0.0, terminated=False, truncated=False)


def test_ring_evicts_oldest_and_never_samples_a_lost_next_observation():
    rng = np.random.default_rng(6)
    buffer = ReplayBuffer(tagged_spec(), 23)
    episodes = {}
    for i in range(40):
        episodes[i] = tagged_episode(rng, i, int(rng.integers(1, 9)))
        buffer.add_episode(episodes[i])
        batch = buffer.sample(200, rng)
        check_batch(batch, episodes)
        sampled = set(batch["obs"]["state"][:, 0].astype(int).tolist())
        newest_slots = 0  # the episodes that still fit in the 23 slots, newest first
        alive = set()
        for k in range(i, -1, -1):
            newest_slots += len(episodes[k]["action"]) + 1
            if newest_slots - 1 > 23:  # beyond this even the tail of the episode is gone
                break
            alive.add(k)
        assert sampled <= alive | {min(alive) - 1}
    assert len(buffer) <= 22


def test_episode_longer_than_capacity_keeps_its_newest_part():
    rng = np.random.default_rng(7)
    buffer = ReplayBuffer(tagged_spec(), 10)
    episode = tagged_episode(rng, 0, 30)
    assert buffer.add_episode(episode) == 9
    batch = buffer.sample(100, rng)
    check_batch(batch, {0: episode})
    assert batch["obs"]["state"][:, 1].min() >= 21


def test_step_mask_keeps_intervention_segments_apart():
    rng = np.random.default_rng(8)
    episode = tagged_episode(rng, 0, 12)
    mask = np.zeros(12, bool)
    mask[[2, 3, 4, 8, 11]] = True
    buffer = ReplayBuffer(tagged_spec(), 100)
    assert buffer.add_episode(episode, step_mask=mask) == 5
    batch = buffer.sample(300, rng)
    check_batch(batch, {0: episode})
    assert set(batch["obs"]["state"][:, 1].astype(int).tolist()) == {2, 3, 4, 8, 11}


def test_bad_episode_is_refused():
    rng = np.random.default_rng(9)
    buffer = ReplayBuffer(tagged_spec(), 100)
    episode = tagged_episode(rng, 0, 5)
    episode["obs"]["front"] = episode["obs"]["front"][:-1]
    with pytest.raises(ValueError, match="front"):
        buffer.add_episode(episode)
    with pytest.raises(ValueError, match="no transition"):
        buffer.sample(4, rng)


def test_round_trip_rollout_store_buffer_is_bit_exact(tmp_path, make_sim_env):
    env = make_sim_env("task=pick_cube")
    spec = StoreSpec.from_spaces(env.observation_space, env.action_space.shape[0])
    rng = np.random.default_rng(10)
    recorded = []
    with EpisodeStore.create(tmp_path / "run.zarr", spec) as store:
        for seed in range(2):
            obs, _ = env.reset(seed=seed)
            store.begin_episode(obs, source="online", task="pick_cube")
            steps = {"obs": [obs], "action": [], "reward": [], "terminated": [], "truncated": []}
            for _ in range(6):
                action = env.action_space.sample().astype(np.float32)
                obs, reward, terminated, truncated, _ = env.step(action)
                store.append_step(obs=obs, action=action, reward=np.float32(reward), terminated=terminated,
                                  truncated=truncated)
                for key, value in zip(steps, (obs, action, reward, terminated, truncated), strict=True):
                    steps[key].append(value)
            store.end_episode(success=False)
            recorded.append(steps)
    buffer = ReplayBuffer.from_stores(tmp_path / "run.zarr", source="online")
    assert len(buffer) == 12
    batch = buffer.sample(64, rng)
    # rows are matched to recorded steps through the (unique) executed action
    lookup = {steps["action"][j].tobytes(): (steps, j) for steps in recorded for j in range(6)}
    for row in range(64):
        steps, j = lookup[batch["action"][row].tobytes()]
        for cam in ("front", "wrist"):
            assert np.array_equal(batch["obs"][cam][row], steps["obs"][j][cam])
            assert np.array_equal(batch["next_obs"][cam][row], steps["obs"][j + 1][cam])
        assert batch["reward"][row] == np.float32(steps["reward"][j])
        assert batch["terminated"][row] == steps["terminated"][j] and batch["truncated"][row] == steps["truncated"][j]


def test_from_stores_filters_by_source_and_label(tmp_path):
    rng = np.random.default_rng(11)
    spec = tagged_spec()
    with EpisodeStore.create(tmp_path / "a.zarr", spec) as store:
        for i, (source, labels) in enumerate([("demo", ["good"]), ("online", []), ("demo", []), ("eval", ["good"])]):
            ep = tagged_episode(rng, i, 4)
            store.begin_episode({k: v[0] for k, v in ep["obs"].items()}, source=source)
            for j in range(4):
                store.append_step(obs={k: v[j + 1] for k, v in ep["obs"].items()},
                                  **{k: ep[k][j] for k in ep if k != "obs"})
            store.end_episode(labels=labels)
    demos = ReplayBuffer.from_stores([tmp_path / "a.zarr"], source="demo")
    assert set(demos.sample(200, rng)["obs"]["state"][:, 0].tolist()) == {0.0, 2.0}
    good = ReplayBuffer.from_stores(tmp_path / "a.zarr", label="good")
    assert set(good.sample(200, rng)["obs"]["state"][:, 0].tolist()) == {0.0, 3.0}
    assert demos.capacity == 10


def test_mixture_draws_set_proportions():
    online, _ = filled_buffer(seed=1, tag=1.0)
    demo, _ = filled_buffer(seed=2, tag=2.0)
    rng = np.random.default_rng(12)
    batch = MixtureSampler({"online": online, "demo": demo}).sample(256, rng)
    tags = batch["obs"]["state"][:, 2]
    assert (tags == 1.0).sum() == 128 and (tags == 2.0).sum() == 128
    batch = MixtureSampler({"online": online, "demo": demo}, {"online": 0.25, "demo": 0.75}).sample(100, rng)
    assert (batch["obs"]["state"][:, 2] == 1.0).sum() == 25
    empty = ReplayBuffer(tagged_spec(), 10)
    batch = MixtureSampler({"online": empty, "demo": demo}).sample(64, rng)
    assert (batch["obs"]["state"][:, 2] == 2.0).all()
    with pytest.raises(ValueError, match="proportions"):
        MixtureSampler({"online": online, "demo": demo}, {"online": 1.0})


def test_add_and_sample_from_many_threads():
    """Writers race a tiny ring (constant eviction) while samplers check every row they get."""
    spec = tagged_spec()
    buffer = ReplayBuffer(spec, 64)
    episodes: dict[int, dict] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def live_writer(first_id: int) -> None:
        rng = np.random.default_rng(first_id)
        for i in range(first_id, first_id + 150):
            ep = tagged_episode(rng, i, int(rng.integers(1, 10)))
            episodes[i] = ep
            buffer.begin_episode({k: v[0] for k, v in ep["obs"].items()})
            for j in range(len(ep["action"])):
                buffer.add_step(obs={k: v[j + 1] for k, v in ep["obs"].items()},
                                **{k: ep[k][j] for k in ep if k != "obs"})
            buffer.end_episode()

    def bulk_writer(first_id: int) -> None:
        rng = np.random.default_rng(first_id)
        for i in range(first_id, first_id + 150):
            episodes[i] = tagged_episode(rng, i, int(rng.integers(1, 10)))
            buffer.add_episode(episodes[i])

    def sampler(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                if len(buffer):
                    check_batch(buffer.sample(32, rng), episodes)
        except BaseException as exc:
            errors.append(exc)

    samplers = [threading.Thread(target=sampler, args=(s,)) for s in range(2)]
    writers = [threading.Thread(target=live_writer, args=(0,)), threading.Thread(target=bulk_writer, args=(10_000,))]
    for t in samplers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in samplers:
        t.join()
    assert not errors, errors[0]
    check_batch(buffer.sample(500, np.random.default_rng(0)), episodes)


def test_prefetcher_yields_torch_batches_and_reports_failures():
    buffer, episodes = filled_buffer()
    with BatchPrefetcher(buffer, 16, device="cpu", seed=0) as batches:
        for _, batch in zip(range(5), batches, strict=False):
            assert isinstance(batch["obs"]["front"], torch.Tensor) and batch["obs"]["front"].shape == (16, 6, 6, 3)
            check_batch(batch, episodes)
    with BatchPrefetcher(ReplayBuffer(tagged_spec(), 10), 4) as batches, pytest.raises(RuntimeError, match="prefetch"):
        next(batches)


def test_memory_is_one_frame_set_per_step():
    spec = StoreSpec({"front": KeySpec((128, 128, 3), "uint8"), "wrist": KeySpec((128, 128, 3), "uint8"),
                      "state": KeySpec((20,), "float32")}, default_step_keys(7))
    buffer = ReplayBuffer(spec, 2020)  # 20 episodes of 100 steps: 101 slots each
    assert buffer.nbytes / (2000 * 2 * 128 * 128 * 3) < 1.1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("resident", [None, "cuda"])
def test_prefetcher_puts_batches_on_the_gpu(resident):
    buffer, episodes = filled_buffer(device=resident)
    mixture = MixtureSampler({"a": buffer, "b": filled_buffer(device=resident)[0]})
    with BatchPrefetcher(mixture if resident is None else buffer, 64, device="cuda", seed=0) as batches:
        kept = [next(batches) for _ in range(12)]  # more than the staging ring: reuse must not alter kept ones
    for batch in kept:
        assert batch["obs"]["front"].device.type == "cuda" and batch["obs"]["front"].dtype == torch.uint8
        check_batch(batch, episodes)  # both buffers of the mixture hold the same episodes (same seed)

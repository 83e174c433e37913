"""The embedding reward model (VLM-RMs) on a tiny randomly initialised CLIP saved to a local folder:
the reward formula, loading only from local files, and clear errors."""

from __future__ import annotations

import json
import string

import numpy as np
import pytest
import torch

from robot_rl.config import ConfigError
from robot_rl.schema import load_config


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A 2-layer CLIP with 32×32 images and a character-level tokenizer, saved as a model folder."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = tmp_path_factory.mktemp("clip")
    chars = list(string.ascii_lowercase + string.digits + ":.,'-")
    vocab = {c: i for i, c in enumerate(chars)} | {c + "</w>": len(chars) + i for i, c in enumerate(chars)}
    vocab |= {"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    layers = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, projection_dim=16)
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=dict(vocab_size=len(vocab), max_position_embeddings=64, **layers),
                                 vision_config=dict(image_size=32, patch_size=8, **layers), projection_dim=16))
    processor = CLIPProcessor(CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                              tokenizer)
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    return folder / "model"


def frames(n=6, seed=0):
    return {"front": np.random.default_rng(seed).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)}


def reward_model_config(path, *more):
    return load_config(["task=pick_cube", "cameras=sim64", "reward_model.name=embedding",
                        f"reward_model.model_path={path}",
                        "reward_model.camera=front", *more], name="train")


def test_the_reward_is_one_minus_half_the_projected_distance_to_the_goal(tiny_clip):
    from robot_rl.rewards.embedding import EmbeddingReward, _embedding, load_local
    from robot_rl.rewards.factory import make_reward_model

    reward_model = make_reward_model(reward_model_config(tiny_clip, "reward_model.alpha=0.5"))
    assert isinstance(reward_model, EmbeddingReward) and reward_model.inline
    out = reward_model.score(frames(), "pick_cube")
    model, processor = load_local(str(tiny_clip))
    with torch.no_grad():
        text = processor(text=["pick cube, done", "a robot arm"], return_tensors="pt", padding=True)
        g, b = torch.nn.functional.normalize(_embedding(model.get_text_features(**text)), dim=-1)
        x = torch.nn.functional.normalize(_embedding(
            model.get_image_features(**processor(images=list(frames()["front"]), return_tensors="pt"))), dim=-1)
    d = torch.nn.functional.normalize(g - b, dim=0)
    projection = 0.5 * torch.outer(d, d) + 0.5 * torch.eye(len(d))
    reward = 1 - 0.5 * (((x - g) @ projection) ** 2).sum(-1)
    np.testing.assert_allclose(out.progress, reward.clamp(0, 1).numpy(), atol=1e-5)
    assert out.valid.all() and ((out.success_prob > 0.5) == (reward.numpy() > 0.9)).all()
    # α = 1: only the baseline→goal direction counts, so an image on the goal's side scores higher
    only_direction = EmbeddingReward(model, processor, "front", alpha=1.0).score(frames(), "pick_cube")
    along = ((x - g) @ d).numpy()
    np.testing.assert_allclose(only_direction.progress, np.clip(1 - 0.5 * along ** 2, 0, 1), atol=1e-5)


def test_the_model_comes_only_from_local_files(tiny_clip, tmp_path):
    from robot_rl.rewards.factory import make_reward_model

    with pytest.raises(ConfigError, match=r"no model .* local folder or the local model cache"):
        make_reward_model(reward_model_config(tmp_path / "nothing-here"))
    with pytest.raises(ConfigError, match="no model 'org/not-cached'"):
        make_reward_model(reward_model_config("org/not-cached"))
    with pytest.raises(ConfigError, match="needs a CLIP/SigLIP model"):
        make_reward_model(load_config(["reward_model.name=embedding"], name="train"))
    with pytest.raises(ConfigError, match="no camera 'top'"):
        make_reward_model(reward_model_config(tiny_clip, "reward_model.camera=top"))

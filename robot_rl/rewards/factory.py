"""The reward model ``cfg.reward_model`` names, built or loaded, with one-line errors."""

from __future__ import annotations

from omegaconf import DictConfig

from robot_rl.config import ConfigError
from robot_rl.rewards.base import RewardModel

REWARD_MODELS = ("env", "learned_progress", "classifier", "embedding", "vlm_progress")
SLOW_REWARD_MODELS = ("vlm_progress",)  # relabel stored episodes in the learner; never built in the actor


def make_reward_model(cfg: DictConfig) -> RewardModel:
    """A trained frame reward model (``reward_model.path``) or a VLM behind an endpoint
    (``reward_model.base_url``)."""
    c = cfg.reward_model
    if c.name == "vlm_progress":
        from robot_rl.rewards.embedding import ModelNotFound
        from robot_rl.rewards.vlm import EndpointConfig, OpenAIChat, TransformersChat, VLMProgress

        chat: OpenAIChat | TransformersChat
        if c.local_model:
            try:
                chat = TransformersChat(c.local_model)
            except ModelNotFound as e:
                raise ConfigError(f"invalid value for 'reward_model.local_model': {e}") from None
        elif c.base_url and c.model:
            chat = OpenAIChat(EndpointConfig(c.base_url, c.model, c.api_key_env, c.timeout_s, c.retries,
                                             allow_insecure=c.allow_insecure))
        else:
            raise ConfigError("invalid value for 'reward_model.base_url': vlm_progress needs an OpenAI-compatible "
                              "endpoint and a model (reward_model.base_url=http://host:8000/v1 "
                              "reward_model.model=...), or a local model (reward_model.local_model=PATH)")
        try:
            return VLMProgress(chat, _camera(cfg), c.max_frames, c.on_parse_failure, c.cache_dir, cfg.seed)
        except ValueError as e:
            raise ConfigError(f"invalid value for 'reward_model': {e}") from None
    if c.name == "embedding":
        from robot_rl.rewards.embedding import EmbeddingReward, ModelNotFound, load_local

        if not c.model_path:
            raise ConfigError("invalid value for 'reward_model.model_path': the embedding reward model needs a "
                              "CLIP/SigLIP model (a local folder, or a name in the local model cache)")
        try:
            model, processor = load_local(c.model_path)
            return EmbeddingReward(model, processor, _camera(cfg), c.goal, c.baseline, c.alpha, c.success_threshold)
        except (ModelNotFound, ValueError) as e:
            raise ConfigError(f"invalid value for 'reward_model.model_path': {e}") from None
    from robot_rl.rewards.learned import KINDS, load_frame_model

    if c.name not in KINDS:
        raise ConfigError(f"invalid value for 'reward_model.name': {c.name!r} is not a reward model to load; "
                          f"choose one of {', '.join(n for n in REWARD_MODELS if n != 'env')}")
    if not c.path:
        raise ConfigError(f"invalid value for 'reward_model.path': reward model {c.name} needs a trained reward "
                          f"model file (robot-rl reward-model train reward_model.name={c.name} data=...)")
    try:
        reward_model = load_frame_model(c.path)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"invalid value for 'reward_model.path': {e}") from None
    if reward_model.kind != c.name:
        raise ConfigError(f"invalid value for 'reward_model.path': {c.path} holds a {reward_model.kind} reward model, "
                          f"not {c.name}")
    return reward_model


def _camera(cfg: DictConfig) -> str:
    """The one camera a vision-language reward model reads: reward_model.camera, or the first configured."""
    camera = cfg.reward_model.camera or next(iter(cfg.cameras))
    if camera not in cfg.cameras:
        raise ConfigError(f"invalid value for 'reward_model.camera': no camera {camera!r} in {sorted(cfg.cameras)}")
    return camera

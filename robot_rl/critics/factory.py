"""The critic ``cfg.critic`` names, built or loaded, with one-line errors."""

from __future__ import annotations

from omegaconf import DictConfig

from robot_rl.config import ConfigError
from robot_rl.critics.base import Critic

CRITICS = ("env", "learned_progress", "classifier", "embedding", "vlm_progress")
SLOW_CRITICS = ("vlm_progress",)  # relabel stored episodes in the learner; never built in the actor


def make_critic(cfg: DictConfig) -> Critic:
    """A trained frame critic (``critic.path``) or a VLM behind an endpoint (``critic.base_url``)."""
    c = cfg.critic
    if c.name == "vlm_progress":
        from robot_rl.critics.embedding import ModelNotFound
        from robot_rl.critics.vlm import EndpointConfig, OpenAIChat, TransformersChat, VLMProgress

        chat: OpenAIChat | TransformersChat
        if c.local_model:
            try:
                chat = TransformersChat(c.local_model)
            except ModelNotFound as e:
                raise ConfigError(f"invalid value for 'critic.local_model': {e}") from None
        elif c.base_url and c.model:
            chat = OpenAIChat(EndpointConfig(c.base_url, c.model, c.api_key_env, c.timeout_s, c.retries,
                                             allow_insecure=c.allow_insecure))
        else:
            raise ConfigError("invalid value for 'critic.base_url': vlm_progress needs an OpenAI-compatible endpoint "
                              "and a model (critic.base_url=http://host:8000/v1 critic.model=...), or a local model "
                              "(critic.local_model=PATH)")
        try:
            return VLMProgress(chat, _camera(cfg), c.max_frames, c.on_parse_failure, c.cache_dir, cfg.seed)
        except ValueError as e:
            raise ConfigError(f"invalid value for 'critic': {e}") from None
    if c.name == "embedding":
        from robot_rl.critics.embedding import EmbeddingCritic, ModelNotFound, load_local

        if not c.model_path:
            raise ConfigError("invalid value for 'critic.model_path': the embedding critic needs a CLIP/SigLIP model "
                              "(a local folder, or a name in the local model cache)")
        try:
            model, processor = load_local(c.model_path)
            return EmbeddingCritic(model, processor, _camera(cfg), c.goal, c.baseline, c.alpha, c.success_threshold)
        except (ModelNotFound, ValueError) as e:
            raise ConfigError(f"invalid value for 'critic.model_path': {e}") from None
    from robot_rl.critics.learned import KINDS, load_frame_critic

    if c.name not in KINDS:
        raise ConfigError(f"invalid value for 'critic.name': {c.name!r} is not a critic to load; choose one of "
                          f"{', '.join(n for n in CRITICS if n != 'env')}")
    if not c.path:
        raise ConfigError(f"invalid value for 'critic.path': critic {c.name} needs a trained critic file "
                          f"(robot-rl critic train critic.name={c.name} data=...)")
    try:
        critic = load_frame_critic(c.path)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"invalid value for 'critic.path': {e}") from None
    if critic.kind != c.name:
        raise ConfigError(f"invalid value for 'critic.path': {c.path} holds a {critic.kind} critic, not {c.name}")
    return critic


def _camera(cfg: DictConfig) -> str:
    """The one camera a vision-language critic reads: critic.camera, or the first configured."""
    camera = cfg.critic.camera or next(iter(cfg.cameras))
    if camera not in cfg.cameras:
        raise ConfigError(f"invalid value for 'critic.camera': no camera {camera!r} in {sorted(cfg.cameras)}")
    return camera

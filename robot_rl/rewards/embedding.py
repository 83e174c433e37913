"""``embedding``: a CLIP or SigLIP model (transformers) as a zero-shot reward, VLM-RMs style.

R(x) = 1 − ½ ‖(x − g) P‖², with x the frame's unit image embedding, g the goal text's and
P = α·(projection onto the line from the baseline text b to g) + (1 − α)·I: α = 1 keeps
only the direction that tells the goal from the baseline, α = 0 the whole embedding.
Progress is R clipped to [0, 1]; success is R above ``success_threshold`` (a soft step).

The model is loaded from a local folder or the local model cache (``local_files_only``):
nothing is fetched at run time, and a model that is not there is one clear error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robot_rl.rewards.base import Frames, RewardModel, RewardOutput, frame_count


class ModelNotFound(FileNotFoundError):
    pass


def load_local(name_or_path: str) -> tuple[Any, Any]:
    """(model, processor) from a folder or the local cache; never the network."""
    from transformers import AutoModel, AutoProcessor

    try:
        model = AutoModel.from_pretrained(name_or_path, local_files_only=True)
        processor = AutoProcessor.from_pretrained(name_or_path, local_files_only=True)
    except OSError as e:
        raise ModelNotFound(f"no model {name_or_path!r} in a local folder or the local model cache (nothing is "
                            f"downloaded at run time; fetch it once with `huggingface-cli download {name_or_path}` "
                            f"on a machine with internet, or point reward_model.model_path at a copy): "
                            f"{str(e).splitlines()[0]}") from None
    if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
        raise ValueError(f"{name_or_path} is a {type(model).__name__}, not a CLIP/SigLIP-style dual encoder")
    model.eval()
    return model, processor


def _embedding(output: Any) -> torch.Tensor:
    """get_*_features returns a tensor, or (newer transformers) an output whose pooled field is it."""
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output


class EmbeddingReward(RewardModel):
    name = "embedding"
    inline = True

    def __init__(self, model: Any, processor: Any, camera: str, goal: str = "{task}, done",
                 baseline: str = "a robot arm", alpha: float = 0.5, success_threshold: float = 0.9,
                 softness: float = 0.02):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.model, self.processor, self.camera = model, processor, camera
        self.goal, self.baseline, self.alpha = goal, baseline, alpha
        self.success_threshold, self.softness = success_threshold, softness
        self._texts: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def _goal_and_projection(self, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        if task not in self._texts:
            texts = [self.goal.format(task=task.replace("_", " ")), self.baseline]
            inputs = self.processor(text=texts, return_tensors="pt", padding=True)
            emb = torch.nn.functional.normalize(_embedding(self.model.get_text_features(**inputs)), dim=-1)
            goal, base = emb[0], emb[1]
            direction = torch.nn.functional.normalize(goal - base, dim=0)
            eye = torch.eye(len(goal))
            projection = self.alpha * torch.outer(direction, direction) + (1 - self.alpha) * eye
            self._texts[task] = (goal, projection)
        return self._texts[task]

    @torch.no_grad()
    def score(self, frames: Frames, task: str) -> RewardOutput:
        frame_count(frames)
        if self.camera not in frames:
            raise ValueError(f"the embedding reward model reads camera {self.camera!r}; "
                             f"the episode has {sorted(frames)}")
        goal, projection = self._goal_and_projection(task)
        inputs = self.processor(images=list(frames[self.camera]), return_tensors="pt")
        x = torch.nn.functional.normalize(_embedding(self.model.get_image_features(**inputs)), dim=-1)
        reward = 1.0 - 0.5 * (((x - goal) @ projection) ** 2).sum(-1)
        progress = reward.clamp(0.0, 1.0).numpy().astype(np.float32)
        success = torch.sigmoid((reward - self.success_threshold) / self.softness).numpy().astype(np.float32)
        return RewardOutput(progress, success, np.ones(len(progress), bool))

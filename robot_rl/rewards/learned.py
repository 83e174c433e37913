"""Reward models learned from recordings: small conv nets on the cameras, cheap enough to run
inline in the actor at the control rate.

- :class:`LearnedProgress` (``learned_progress``): regresses each frame's progress, t / (T − 1)
  along successful demonstrations, so a frame later in the task scores higher.
- :class:`SuccessClassifier` (``classifier``, HIL-SERL style): the probability that a frame
  shows the task done, trained on labelled frames with balanced batches, DrQ shifts, a
  validation split and the threshold with the best validation F1.

Both train with DrQ shifts and, when asked (``FitConfig.hue_jitter``), colour jitter: a model
that must not lean on an object's colour or the light (benchmarks/reward_models.py: a cube of
a colour never trained on).

Both are one :class:`FrameNet` (a patchify stem per camera, an MLP head, one logit) and are
saved as one file: the weights and what is needed to rebuild them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.files import atomic_write
from robot_rl.layers import ConvStem, colour_jitter, mlp, random_shift
from robot_rl.rewards.base import Frames, RewardModel, RewardOutput, calibrated, frame_count
from robot_rl.rewards.metrics import best_threshold, success_scores

FORMAT = "robot_rl.frame_critic/1"


class FrameNet(nn.Module):
    """One logit per frame from every camera's image."""

    def __init__(self, cameras: Sequence[str], image_size: int, features: int = 64, hidden: int = 128):
        super().__init__()
        self.cameras, self.image_size = list(cameras), image_size
        self.features, self.hidden = features, hidden
        self.stems = nn.ModuleDict({name: ConvStem("patchify", image_size, features) for name in self.cameras})
        self.head = mlp([features * len(self.cameras), hidden, hidden, 1])

    def forward(self, images: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``images``: camera → (B, H, W, 3) uint8; returns (B,) logits."""
        feats = [self.stems[n](images[n].permute(0, 3, 1, 2).float().div_(255.0)) for n in self.cameras]
        return self.head(torch.cat(feats, dim=-1)).squeeze(-1)


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    augmentation_pad: int = 4  # DrQ random shift, pixels
    hue_jitter: float = 0.0  # degrees: each frame's colours turned about the grey axis by up to this (180: any)
    brightness_jitter: float = 0.0  # each frame's brightness scaled by up to 1 ± this
    val_fraction: float = 0.2  # of the episodes (the classifier's threshold is chosen on them)
    seed: int = 0


def fit(net: FrameNet, images: Mapping[str, np.ndarray], targets: np.ndarray, config: FitConfig,
        balanced: bool = False) -> list[float]:
    """Train ``net`` on frames with soft targets in [0, 1] (binary cross-entropy on its logit);
    ``balanced``: each batch draws half its frames from each class. Returns the epoch losses."""
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    tensors = {name: torch.from_numpy(np.ascontiguousarray(images[name])) for name in net.cameras}
    y = torch.as_tensor(targets, dtype=torch.float32)
    n = len(y)
    if balanced:
        positives, negatives = np.flatnonzero(targets >= 0.5), np.flatnonzero(targets < 0.5)
        if len(positives) == 0 or len(negatives) == 0:
            raise ValueError(f"a balanced fit needs frames of both classes, got {len(positives)} positive and "
                             f"{len(negatives)} negative")
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    losses = []
    net.train()
    for _ in range(config.epochs):
        if balanced:
            half = config.batch_size // 2
            batches = [np.concatenate([rng.choice(positives, half), rng.choice(negatives, half)])
                       for _ in range(max(1, n // config.batch_size))]
        else:
            order = rng.permutation(n)
            batches = [order[i:i + config.batch_size] for i in range(0, n, config.batch_size)]
        total = 0.0
        for idx in batches:
            index = torch.from_numpy(idx)
            batch = {name: colour_jitter(random_shift(t[index], config.augmentation_pad), config.hue_jitter,
                                         config.brightness_jitter) for name, t in tensors.items()}
            loss = F.binary_cross_entropy_with_logits(net(batch), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / sum(len(b) for b in batches))
    net.eval()
    return losses


@torch.no_grad()
def predict(net: FrameNet, frames: Frames, batch_size: int = 256) -> np.ndarray:
    """sigmoid(logit) for every frame."""
    missing = [name for name in net.cameras if name not in frames]
    if missing:
        raise ValueError(f"the reward model was trained on cameras {net.cameras}; missing {missing}")
    n = frame_count({name: frames[name] for name in net.cameras})
    sizes = {frames[name].shape[1:3] for name in net.cameras}
    if sizes != {(net.image_size, net.image_size)}:
        raise ValueError(f"the reward model sees {net.image_size}×{net.image_size} frames, got {sorted(sizes)}")
    net.eval()
    out = [torch.sigmoid(net({name: torch.from_numpy(np.ascontiguousarray(frames[name][i:i + batch_size]))
                              for name in net.cameras}))
           for i in range(0, n, batch_size)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(0, np.float32)


def _stack(episodes: Sequence[Frames], cameras: Sequence[str]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([e[name] for e in episodes]) for name in cameras}


class FrameRewardModel(RewardModel):
    """A trained :class:`FrameNet` behind the reward model interface; saved and loaded as one file."""

    kind = "frame"

    def __init__(self, net: FrameNet, task: str, threshold: float = 0.5):
        self.net, self.task, self.threshold = net, task, threshold

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "kind": self.kind, "task": self.task, "threshold": self.threshold,
                "cameras": self.net.cameras, "image_size": self.net.image_size, "features": self.net.features,
                "hidden": self.net.hidden}
        # a crash mid-save leaves the old file
        return atomic_write(path, lambda tmp: torch.save({"meta": meta, "state": self.net.state_dict()}, tmp))

    def _check_task(self, task: str) -> None:
        if task != self.task:
            raise ValueError(f"this {self.kind} reward model was trained on task {self.task!r}, not {task!r}")


class LearnedProgress(FrameRewardModel):
    """Progress per frame; a frame at progress ≥ ``threshold`` (0.9) counts as done."""

    name = kind = "learned_progress"

    def __init__(self, net: FrameNet, task: str, threshold: float = 0.9):
        super().__init__(net, task, threshold)

    @classmethod
    def train(cls, demos: Sequence[Frames], task: str, config: FitConfig = FitConfig(),
              failures: Sequence[Frames] = ()) -> LearnedProgress:
        """From successful demonstrations, frame t of T at progress t / (T − 1), and failed
        episodes, every frame at 0. Without failures, a state no demonstration passed through
        gets whatever progress the net extrapolates, and a policy learns to find such states
        (the reward model's false positives end its episodes early with the success reward)."""
        if not demos:
            raise ValueError("learned_progress needs at least one successful demonstration")
        cameras = sorted(demos[0])
        targets = [np.linspace(0.0, 1.0, frame_count(d)) for d in demos]
        targets += [np.zeros(frame_count(f)) for f in failures]
        net = FrameNet(cameras, demos[0][cameras[0]].shape[1])
        fit(net, _stack([*demos, *failures], cameras), np.concatenate(targets).astype(np.float32), config)
        return cls(net, task)

    def score(self, frames: Frames, task: str) -> RewardOutput:
        self._check_task(task)
        progress = predict(self.net, frames)
        return RewardOutput(progress, calibrated(progress, self.threshold), np.ones(len(progress), bool))


class SuccessClassifier(FrameRewardModel):
    name = kind = "classifier"

    @classmethod
    def train(cls, episodes: Sequence[Frames], labels: Sequence[np.ndarray], task: str,
              config: FitConfig = FitConfig()) -> tuple[SuccessClassifier, dict[str, float]]:
        """From episodes with a success label per frame; whole episodes go to the validation
        split (frames of one episode look alike), where the threshold is chosen. Returns the
        reward model and its validation scores."""
        if len(episodes) != len(labels) or len(episodes) < 2:
            raise ValueError("the classifier needs at least two labelled episodes (one for validation)")
        cameras = sorted(episodes[0])
        order = np.random.default_rng(config.seed).permutation(len(episodes))
        n_val = min(len(episodes) - 1, max(1, round(config.val_fraction * len(episodes))))
        val, train = order[:n_val], order[n_val:]
        net = FrameNet(cameras, episodes[0][cameras[0]].shape[1])
        y = np.concatenate([np.asarray(labels[i], dtype=np.float32) for i in train])
        fit(net, _stack([episodes[i] for i in train], cameras), y, config, balanced=True)
        val_probs = predict(net, _stack([episodes[i] for i in val], cameras))
        val_labels = np.concatenate([np.asarray(labels[i], dtype=bool) for i in val])
        threshold = best_threshold(val_probs, val_labels) if val_labels.any() and not val_labels.all() else 0.5
        reward_model = cls(net, task, threshold)
        return reward_model, asdict(success_scores(val_probs, val_labels, threshold)) | {"threshold": threshold}

    def score(self, frames: Frames, task: str) -> RewardOutput:
        self._check_task(task)
        success = calibrated(predict(self.net, frames), self.threshold)
        return RewardOutput(success.copy(), success, np.ones(len(success), bool))


KINDS = {c.kind: c for c in (LearnedProgress, SuccessClassifier)}


def load_frame_model(path: str | Path) -> FrameRewardModel:
    """A reward model saved by :meth:`FrameRewardModel.save`; a missing or foreign file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no reward model at {path} (train one with robot-rl reward-model train)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        meta = saved["meta"]
    except Exception as e:
        raise ValueError(f"{path} is not a robot_rl reward model: {e}") from None
    if meta.get("format") != FORMAT or meta.get("kind") not in KINDS:
        raise ValueError(f"{path} is not a robot_rl reward model of a known kind (format {meta.get('format')!r}, "
                         f"kind {meta.get('kind')!r})")
    net = FrameNet(meta["cameras"], meta["image_size"], meta["features"], meta["hidden"])
    net.load_state_dict(saved["state"])
    net.eval()
    return KINDS[meta["kind"]](net, meta["task"], meta["threshold"])

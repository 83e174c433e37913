"""Network building blocks: MLPs, image encoders, the DrQ random shift and colour jitter, shared by the
SAC agent (``robot_rl.rl``) and the learned reward models (``robot_rl.rewards``).

In the agent the encoder is shared: the Q-functions train it, the policy reads its features
detached (DrQ, HIL-SERL), so policy gradients never move it. On a CPU the patchify stem is the default:
a 4×4/stride-4 convolution costs about a tenth of a DrQ 3×3/stride-2 stack for the same
image, which is what makes learning from pixels fit in minutes on a laptop.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn


def mlp(sizes: Sequence[int], layer_norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if layer_norm:
                layers.append(nn.LayerNorm(b))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConvStem(nn.Module):
    """A trainable conv net for one camera: ``patchify`` (4×4 stride 4, then 3×3) or ``drq``
    (3×3 stride 2, then three 3×3), then a linear projection with LayerNorm and tanh."""

    def __init__(self, kind: str, image_size: int, features: int, channels: int = 32):
        super().__init__()
        if kind == "patchify":
            convs = [nn.Conv2d(3, channels, 4, stride=4), nn.ReLU(), nn.Conv2d(channels, channels, 3), nn.ReLU()]
        elif kind == "drq":
            convs = [nn.Conv2d(3, channels, 3, stride=2), nn.ReLU()]
            for _ in range(3):
                convs += [nn.Conv2d(channels, channels, 3), nn.ReLU()]
        else:
            raise ValueError(f"unknown encoder {kind!r}; choose 'patchify', 'drq' or 'resnet'")
        self.convs = nn.Sequential(*convs)
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, 3, image_size, image_size)).numel()
        self.project = nn.Sequential(nn.Linear(flat, features), nn.LayerNorm(features), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.convs(images).flatten(1))


class SpatialEmbedding(nn.Module):
    """HIL-SERL's learned spatial embeddings: per channel, ``num_features`` learned
    spatial kernels summed over the feature map, then a linear projection."""

    def __init__(self, channels: int, height: int, width: int, features: int, num_features: int = 8):
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(channels, height, width, num_features))
        nn.init.kaiming_uniform_(self.kernel.view(channels, -1), a=math.sqrt(5))
        self.project = nn.Sequential(nn.Linear(channels * num_features, features), nn.LayerNorm(features), nn.Tanh())

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        embedded = torch.einsum("bchw,chwf->bcf", feature_map, self.kernel)
        return self.project(embedded.flatten(1))


def load_frozen_resnet(path: str | Path) -> nn.Module:
    """A transformers ResNet from a local folder (config.json + weights), frozen.

    Nothing is fetched from a hub: a missing folder is an error that names it.
    """
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no ResNet weights at {path} (expected a transformers model folder with "
                                f"config.json); set policy.encoder.resnet_path to a local copy")
    from transformers import ResNetModel

    model = ResNetModel.from_pretrained(str(path), local_files_only=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class PixelEncoder(nn.Module):
    """All cameras to one feature vector: a stem per camera, concatenated with ``state``.

    With a frozen backbone, :meth:`backbone_features` runs it once per batch without
    gradients and :meth:`forward` accepts those cached maps, so a batch reused for several
    critic updates pays for the backbone once.
    """

    def __init__(self, cameras: Sequence[str], image_size: int, state_dim: int, kind: str = "patchify",
                 features: int = 50, resnet_path: str | None = None):
        super().__init__()
        self.cameras = list(cameras)
        self.kind = kind
        self.backbone: nn.Module | None = None
        if kind == "resnet":
            if resnet_path is None:
                raise ValueError("encoder 'resnet' needs policy.encoder.resnet_path (a local transformers ResNet)")
            backbone = load_frozen_resnet(resnet_path)
            with torch.no_grad():
                fmap = backbone(pixel_values=torch.zeros(1, 3, image_size, image_size)).last_hidden_state
            self.backbone = backbone
            self.heads = nn.ModuleDict({c: SpatialEmbedding(*fmap.shape[1:], features) for c in self.cameras})
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        else:
            self.heads = nn.ModuleDict({c: ConvStem(kind, image_size, features) for c in self.cameras})
        self.out_dim = len(self.cameras) * features + state_dim

    def backbone_features(self, images: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Frozen-backbone feature maps for float images in [0, 1] (identity without a backbone)."""
        if self.backbone is None:
            return images
        with torch.no_grad():
            return {c: self.backbone(pixel_values=(images[c] - self.mean) / self.std).last_hidden_state
                    for c in self.cameras}

    def forward(self, images: dict[str, torch.Tensor], state: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.heads[c](images[c]) for c in self.cameras] + [state], dim=-1)


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """DrQ augmentation on N×H×W×C images: pad ``pad`` pixels by replication and crop back
    at a random integer offset per image (offsets in [0, 2·pad] of the padded image)."""
    if pad <= 0:
        return images
    offsets = torch.randint(0, 2 * pad + 1, (images.shape[0], 2), device=images.device)
    if images.device.type == "cpu":
        return shift_by_copy(images, offsets, pad)
    return shift_by_gather(images, offsets, pad)


def shift_by_gather(images: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """The shifted crops as one gather with clamped indices: a single kernel on an accelerator."""
    n, h, w = images.shape[:3]
    device = images.device
    rows = (offsets[:, :1] - pad + torch.arange(h, device=device)).clamp_(0, h - 1)
    cols = (offsets[:, 1:] - pad + torch.arange(w, device=device)).clamp_(0, w - 1)
    return images[torch.arange(n, device=device)[:, None, None], rows[:, :, None], cols[:, None, :]]


def shift_by_copy(images: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """The same crops on a CPU: pad once, then copy each image's window as a block. A
    per-pixel gather costs several times more there (~30 ms vs ~6 ms for 256 images at 64×64)."""
    n, h, w = images.shape[:3]
    padded = images.new_empty((n, h + 2 * pad, w + 2 * pad, *images.shape[3:]))
    padded[:, pad : pad + h, pad : pad + w] = images
    padded[:, :pad, pad : pad + w] = images[:, :1]
    padded[:, pad + h :, pad : pad + w] = images[:, -1:]
    padded[:, :, :pad] = padded[:, :, pad : pad + 1]
    padded[:, :, pad + w :] = padded[:, :, pad + w - 1 : pad + w]
    out = torch.empty_like(images)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, dy : dy + h, dx : dx + w]
    return out


def colour_jitter(images: torch.Tensor, hue: float, brightness: float = 0.0) -> torch.Tensor:
    """N×H×W×3 uint8 images, each with its colours turned about the grey axis by its own random
    angle in ±``hue`` degrees (180: any hue; greys stay grey) and scaled by a random factor in
    1 ± ``brightness``. A model trained on them cannot lean on an object's colour or the light."""
    if hue <= 0 and brightness <= 0:
        return images
    n = images.shape[0]
    device = images.device
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(hue)
    axis = torch.full((3,), 1 / math.sqrt(3), device=device)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=device) / math.sqrt(3)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    turn = cos * torch.eye(3, device=device) + sin * cross + (1 - cos) * torch.outer(axis, axis)  # Rodrigues
    scale = 1 + (torch.rand(n, device=device) * 2 - 1) * brightness
    out = torch.einsum("nhwc,ndc->nhwd", images.float(), turn * scale[:, None, None])
    return out.round_().clamp_(0, 255).to(torch.uint8)

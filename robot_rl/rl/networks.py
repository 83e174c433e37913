"""The SAC agent's heads: the squashed-Gaussian policy network and the Q-function ensemble.

Both read the features of a shared :class:`robot_rl.layers.PixelEncoder`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.layers import mlp


class GaussianPolicy(nn.Module):
    """A tanh-squashed Gaussian policy over the normalised action box."""

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0

    def __init__(self, in_dim: int, action_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = mlp([in_dim, *hidden, 2 * action_dim])

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(features).chunk(2, dim=-1)
        log_std = self.LOG_STD_MIN + 0.5 * (self.LOG_STD_MAX - self.LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mean, log_std

    def sample(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action in (-1, 1) and its log-probability."""
        mean, log_std = self(features)
        std = log_std.exp()
        pre_tanh = mean + std * torch.randn_like(mean)
        action = torch.tanh(pre_tanh)
        log_prob = (-0.5 * ((pre_tanh - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh))).sum(-1)
        return action, log_prob

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(features)[0])


class QEnsemble(nn.Module):
    """``n`` Q-functions with LayerNorm, evaluated together."""

    def __init__(self, in_dim: int, action_dim: int, hidden: Sequence[int], n: int):
        super().__init__()
        self.qs = nn.ModuleList(mlp([in_dim + action_dim, *hidden, 1]) for _ in range(n))

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, action], dim=-1)
        return torch.stack([q(x).squeeze(-1) for q in self.qs])  # (n, batch)

"""SAC with the tricks that make real-robot RL sample-efficient (RLPD, DrQ, HIL-SERL).

One :meth:`SACAgent.update` is one critic step (and, every ``policy_update_every`` critic
steps, one policy and temperature step); the learner loop calls it ``utd_ratio`` times per
environment step. Targets bootstrap through truncations (time limits) and stop only at
terminations; the replay buffer never pairs steps across episodes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from robot_rl.env.robot_env import STATE_KEY
from robot_rl.layers import PixelEncoder, mlp, random_shift
from robot_rl.rl.networks import GaussianPolicy, QEnsemble
from robot_rl.schema.training import AgentConfig

Batch = Mapping[str, object]

#: The batch key (float, 1 or 0) that marks the rows drawn from the demo buffer.
DEMO_KEY = "from_demo"

#: The gripper critic's choices and the command each sends (toggle mode: ±1 switch, 0 keeps).
GRIPPER_COMMANDS = (-1.0, 0.0, 1.0)  # open, stay, close


def q_scale(q: torch.Tensor) -> torch.Tensor:
    """What a Q term is divided by next to an imitation term: the batch's mean |Q| when it is
    above 1 (TD3+BC's normalisation, for large rewards), else 1. Never below 1: values that
    cross 0 (soft values do, as the entropy bonus offsets the rewards) once multiplied the Q
    term 30-fold, and a fine-tuned policy at 100 % fell to 25 %."""
    return q.abs().mean().detach().clamp(min=1.0)


def gripper_choice(command: torch.Tensor) -> torch.Tensor:
    """The discrete choice (0 open, 1 stay, 2 close) an executed gripper command stands for."""
    return (command > 0.5).long() * 2 + ((command >= -0.5) & (command <= 0.5)).long()


#: checkpoint keys of before the policy network was called the policy (issue 17): still read
RENAMED_STATE = {"actor": "policy", "actor_opt": "policy_opt", "actor_frozen_until": "policy_frozen_until"}


class SACAgent:
    def __init__(self, observation_space: gym.spaces.Dict, action_dim: int, cfg: AgentConfig,
                 device: str | torch.device = "cpu", seed: int = 0):
        self.cfg, self.action_dim = cfg, action_dim
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.cameras = [k for k in observation_space.spaces if k != STATE_KEY]
        sizes = {observation_space[c].shape[:2] for c in self.cameras}
        if len(sizes) != 1 or len({*next(iter(sizes))}) != 1:
            raise ValueError(f"all cameras must deliver the same square image size, got {sorted(sizes)}")
        image_size = next(iter(sizes))[0]
        state_dim = observation_space[STATE_KEY].shape[0]

        if cfg.gripper_critic and action_dim < 2:
            raise ValueError("gripper_critic needs an action with a gripper command as its last dimension")
        # with a gripper critic the policy and critics handle every dimension but the last
        self.continuous_dim = action_dim - 1 if cfg.gripper_critic else action_dim
        self.encoder = PixelEncoder(self.cameras, image_size, state_dim, cfg.encoder, cfg.encoder_features,
                                    cfg.resnet_path).to(self.device)
        self.critic = QEnsemble(self.encoder.out_dim, self.continuous_dim, cfg.hidden,
                                     cfg.num_critics).to(self.device)
        self.policy = GaussianPolicy(self.encoder.out_dim, self.continuous_dim, cfg.hidden).to(self.device)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.init_temperature), device=self.device, requires_grad=True)
        self.target_entropy = -self.continuous_dim / 2 if cfg.target_entropy is None else cfg.target_entropy
        self.gripper_q: torch.nn.Module | None = None
        if cfg.gripper_critic:
            self.gripper_q = mlp([self.encoder.out_dim, *cfg.hidden, len(GRIPPER_COMMANDS)]).to(self.device)
            self.gripper_target = copy.deepcopy(self.gripper_q).requires_grad_(False)
            self.gripper_opt = torch.optim.Adam(self.gripper_q.parameters(), lr=cfg.critic_lr, fused=True)
        self._rng = np.random.default_rng(seed)

        trainable_encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        # fused Adam: one kernel over all parameters instead of a Python loop per tensor
        self.critic_opt = torch.optim.Adam([*trainable_encoder, *self.critic.parameters()], lr=cfg.critic_lr,
                                           fused=True)
        self.policy_opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.policy_lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.temperature_lr)
        self.updates = 0
        # the policy, temperature and encoder learn only after this update: the critics of an
        # agent started from a checkpoint first learn the values of the policy they were given
        self.policy_frozen_until = 0
        self.bc_weight = cfg.bc_weight or 0.0  # the learner sets it when bc_weight is None and it starts from init
        self.autocast = cfg.mixed_precision and self.device.type == "cuda"
        if self.device.type == "cuda":
            self.encoder.to(memory_format=torch.channels_last)
            self.target_encoder.to(memory_format=torch.channels_last)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """One action for one observation (numpy in, numpy out)."""
        batch = {k: torch.as_tensor(np.asarray(v)[None], device=self.device) for k, v in obs.items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            features = self.encoder(self.encoder.backbone_features(self.camera_inputs(batch, augment=False)),
                                    batch[STATE_KEY].float())
            action = self.policy.mode(features) if deterministic else self.policy.sample(features)[0]
            action = action[0].float().cpu().numpy()
            if self.gripper_q is not None:
                choice = int(self.gripper_q(features)[0].argmax())
                if not deterministic and self._rng.random() < self.cfg.gripper_epsilon:
                    choice = int(self._rng.integers(len(GRIPPER_COMMANDS)))
                action = np.append(action, np.float32(GRIPPER_COMMANDS[choice]))
        return action

    def camera_inputs(self, obs: Mapping[str, torch.Tensor], augment: bool) -> dict[str, torch.Tensor]:
        """The cameras' uint8 NHWC images in ``obs`` → float NCHW in [0, 1], as the encoder takes
        them; randomly shifted with ``augment`` (training)."""
        out = {}
        for cam in self.cameras:
            x = random_shift(obs[cam], self.cfg.augmentation_pad) if augment else obs[cam]
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            out[cam] = x.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else x
        return out

    # ------------------------------------------------------------------ learning
    def update(self, batch: Batch) -> dict[str, float]:
        """One critic step on ``batch`` (and a policy/temperature step on the policy's cadence).

        ``batch``: ``obs`` and ``next_obs`` (dicts of uint8 images and float ``state``),
        ``action``, ``reward``, ``terminated`` (all tensors on this agent's device).
        """
        obs, next_obs = batch["obs"], batch["next_obs"]
        images = self.encoder.backbone_features(self.camera_inputs(obs, augment=True))
        next_images = self.encoder.backbone_features(self.camera_inputs(next_obs, augment=True))
        state, next_state = obs[STATE_KEY].float(), next_obs[STATE_KEY].float()
        full_action = batch["action"].float()
        action = full_action[:, : self.continuous_dim]
        reward = batch["reward"].float().view(-1)
        not_done = 1.0 - batch["terminated"].float().view(-1)

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            with torch.no_grad():
                next_features = self.encoder(next_images, next_state)
                next_action, next_log_prob = self.policy.sample(next_features)
                target_q = self.target_critic(self.target_encoder(next_images, next_state), next_action)
                if self.cfg.num_target_critics is not None:
                    subset = torch.randperm(self.cfg.num_critics, device=self.device)[: self.cfg.num_target_critics]
                    target_q = target_q[subset]
                target_v = target_q.min(dim=0).values.float() - self.alpha.detach() * next_log_prob.float()
                target = reward + self.cfg.discount * not_done * target_v
            features = self.encoder(images, state)
            if self.updates < self.policy_frozen_until:  # the given policy reads these features: hold them too
                features = features.detach()
            q = self.critic(features, action).float()
            critic_loss = F.mse_loss(q, target.unsqueeze(0).expand_as(q), reduction="none").mean(1).sum()
            demo = batch.get(DEMO_KEY)
            if self.bc_weight > 0 and demo is not None and features.requires_grad and bool(demo.any()):
                # the encoder keeps what imitating the demos needs, not only what the values need
                # (it is what robot-rl offline trained it for); the policy's own step is below
                critic_loss = critic_loss + self.bc_weight * self._imitation_error(features, action, demo)
        self.optimizer_step(self.critic_opt, critic_loss, [*self.encoder.parameters(), *self.critic.parameters()])
        self.update_targets()
        self.updates += 1
        metrics = {"critic_loss": critic_loss.item(), "q": q.mean().item(), "target_q": target.mean().item()}

        if self.gripper_q is not None:
            metrics.update(self.update_gripper(features.detach(), next_features, full_action[:, -1], reward,
                                               not_done))
        if self.updates % self.cfg.policy_update_every == 0 and self.updates > self.policy_frozen_until:
            metrics.update(self._update_policy(features.detach(), action, batch.get(DEMO_KEY)))
        return metrics

    def _imitation_error(self, features: torch.Tensor, data_action: torch.Tensor, demo: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the policy's mean action to the demo rows' actions."""
        mask = demo.float().view(-1)
        error = ((self.policy.mode(features).float() - data_action.float()) ** 2).mean(-1)
        return (error * mask).sum() / mask.sum()

    def update_gripper(self, features: torch.Tensor, next_features: torch.Tensor, command: torch.Tensor,
                       reward: torch.Tensor, not_done: torch.Tensor, conservative: float = 0.0) -> dict[str, float]:
        """Double DQN on the gripper choice; opening or closing costs ``gripper_penalty``.
        ``conservative`` > 0 adds discrete CQL (offline): logsumexp over the choices minus the
        data's choice, times ``conservative``."""
        choice = gripper_choice(command)
        with torch.no_grad():
            best_next = self.gripper_q(next_features.float()).argmax(-1, keepdim=True)
            next_q = self.gripper_target(next_features.float()).gather(-1, best_next).squeeze(-1)
            penalised = reward - self.cfg.gripper_penalty * (choice != 1).float()
            target = penalised + self.cfg.discount * not_done * next_q
        all_q = self.gripper_q(features.float())
        q = all_q.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
        loss = F.mse_loss(q, target)
        if conservative > 0:
            loss = loss + conservative * (torch.logsumexp(all_q, dim=-1) - q).mean()
        self.optimizer_step(self.gripper_opt, loss, self.gripper_q.parameters())
        with torch.no_grad():
            torch._foreach_lerp_(list(self.gripper_target.parameters()), list(self.gripper_q.parameters()),
                                 self.cfg.tau)
        return {"gripper_loss": loss.item(), "gripper_q": q.mean().item()}

    def _update_policy(self, features: torch.Tensor, data_action: torch.Tensor | None = None,
                      demo: torch.Tensor | None = None) -> dict[str, float]:
        """SAC's policy and temperature step; with ``bc_weight`` > 0, plus imitation of the
        actions of the batch's demo rows (``demo``: 1 where a row is a demonstration's)."""
        metrics = {}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            action, log_prob = self.policy.sample(features)
            log_prob = log_prob.float()
            q = self.critic(features, action).float().mean(0)
            policy_loss = (self.alpha.detach() * log_prob - q).mean()
            if self.bc_weight > 0 and demo is not None and bool(demo.any()):
                bc = self._imitation_error(features, data_action, demo)
                policy_loss = policy_loss / q_scale(q) + self.bc_weight * bc
                metrics["bc_loss"] = bc.item()
        self.optimizer_step(self.policy_opt, policy_loss, self.policy.parameters())
        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        self.optimizer_step(self.alpha_opt, alpha_loss, [self.log_alpha])
        return {**metrics, "policy_loss": policy_loss.item(), "alpha": self.alpha.item(),
                "entropy": -log_prob.mean().item()}

    def optimizer_step(self, optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
                       loss: torch.Tensor, params: Iterable[torch.Tensor] | None = None) -> None:
        """Zero, backpropagate ``loss``, clip ``params``' gradients (``grad_clip``; by default
        every parameter the optimisers hold), and step each optimiser (one loss may train parts
        held by several, as offline imitation trains encoder and policy)."""
        optimizers = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)
        if params is None:
            params = [p for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], self.cfg.grad_clip)
        for optimizer in optimizers:
            optimizer.step()

    @torch.no_grad()
    def update_targets(self) -> None:
        """Move the target encoder and critics ``tau`` of the way towards the online ones (Polyak
        averaging; frozen parameters are left as they are)."""
        tau = self.cfg.tau
        for online, target in ((self.encoder, self.target_encoder), (self.critic, self.target_critic)):
            online_params = [p for p in online.parameters() if p.requires_grad]
            target_params = [p for p, o in zip(target.parameters(), online.parameters(), strict=True)
                             if o.requires_grad]
            torch._foreach_lerp_(target_params, online_params, tau)

    # ------------------------------------------------------------------ weights
    def policy_arrays(self) -> dict[str, np.ndarray]:
        """What an actor needs to act: the encoder's trainable part and the policy, as arrays.

        A frozen backbone is left out: every actor loads it from its own local copy.
        """
        arrays = {}
        for prefix, module in self._policy_modules():
            for name, tensor in module.state_dict().items():
                if not name.startswith("backbone."):
                    arrays[f"{prefix}.{name}"] = tensor.detach().float().cpu().numpy()
        return arrays

    def _policy_modules(self) -> list[tuple[str, torch.nn.Module]]:
        modules = [("encoder", self.encoder), ("policy", self.policy)]
        return modules + ([("gripper_q", self.gripper_q)] if self.gripper_q is not None else [])

    def load_policy_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        for prefix, module in self._policy_modules():
            own = {k: v for k, v in module.state_dict().items() if not k.startswith("backbone.")}
            given = {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + ".")}
            if set(given) != set(own):
                missing, extra = sorted(set(own) - set(given)), sorted(set(given) - set(own))
                raise ValueError(f"policy weights do not fit this agent ({prefix}): missing {missing[:3]}, "
                                 f"unexpected {extra[:3]}")
            for k, v in given.items():
                if tuple(v.shape) != tuple(own[k].shape):
                    raise ValueError(f"policy weight {prefix}.{k} has shape {v.shape}, expected {tuple(own[k].shape)}")
            module.load_state_dict({k: torch.as_tensor(v) for k, v in given.items()}, strict=False)

    def state_dict(self) -> dict[str, object]:
        return {
            "encoder": self.encoder.state_dict(), "critic": self.critic.state_dict(),
            "policy": self.policy.state_dict(),
            "target_encoder": self.target_encoder.state_dict(), "target_critic": self.target_critic.state_dict(),
            "log_alpha": self.log_alpha.detach().cpu(), "critic_opt": self.critic_opt.state_dict(),
            "policy_opt": self.policy_opt.state_dict(), "alpha_opt": self.alpha_opt.state_dict(),
            "updates": self.updates, "policy_frozen_until": self.policy_frozen_until,
            **({"gripper_q": self.gripper_q.state_dict(), "gripper_target": self.gripper_target.state_dict(),
                "gripper_opt": self.gripper_opt.state_dict()} if self.gripper_q is not None else {}),
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        state = {RENAMED_STATE.get(k, k): v for k, v in state.items()}  # checkpoints written before issue 17
        for name in ("encoder", "critic", "policy", "target_encoder", "target_critic"):
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        for name in ("critic_opt", "policy_opt", "alpha_opt"):
            getattr(self, name).load_state_dict(state[name])
        if self.gripper_q is not None:
            for name in ("gripper_q", "gripper_target", "gripper_opt"):
                getattr(self, name).load_state_dict(state[name])
        self.updates = int(state["updates"])
        self.policy_frozen_until = int(state.get("policy_frozen_until", 0))

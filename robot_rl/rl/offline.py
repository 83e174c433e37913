"""`robot-rl offline`: learn a policy from recordings alone, to start online training from.

Two methods, on the same :class:`SACAgent` networks that online training uses, so an offline
checkpoint is a starting point for ``robot-rl train init=...`` as it is:

- ``bc``: the encoder and policy imitate the recorded actions: the squared error of the
  mean action, and that of a sampled action for the spread.
- ``calql``: the same imitation, and critics trained as in Cal-QL (Nakamoto et al., 2023)
  on the features of that encoder, so that online fine-tuning starts from values it can
  trust rather than from random critics (from those, fine-tuning lost a BC policy within
  500 steps). TD plus CQL's conservative term, which pushes Q down on actions the data does
  not take (random ones and the policy's) and up on the data's, as a hinge: no further once
  the data's action leads the others by the margin the importance weights leave.
  Calibration keeps the values at the scale of the data's returns: the conservative term
  stops pushing a policy action's Q once it is below the recorded return-to-go (Cal-QL),
  and a recorded action's TD target is floored at that return, a lower bound on its worth.
  The TD backup carries no entropy bonus (CQL's default). With ``advantage_weight`` λ > 0
  the imitation is advantage-weighted (AWAC): a recorded action counts
  exp(λ · (Q(s, a) − Q(s, π(s)))), so that on mixed data the policy would follow the actions
  the critics value rather than average good and bad ones; 0 by default, since at λ = 10 it
  has not yet beaten plain imitation on benchmarks/offline.py's mixed data. ``q_weight`` > 0 adds SAC's Q
  term to the policy (divided by the batch's mean |Q| above 1, as in TD3+BC), for data worse than
  an expert's; on expert demos it only pulled the policy off them (30 % against 90 % after
  500 updates at 0.1), so it is 0 by default.

Rewards are the recorded ones, or any reward model's (``reward_model.name``), recomputed as the episodes
load. Metrics go to run_dir/metrics.jsonl and wandb; checkpoints are atomic and a run given
the same ``run_dir`` resumes from its last one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from tqdm import tqdm

from robot_rl.config import ConfigError, data_paths
from robot_rl.data import EpisodeStore, ReplayBuffer, StoreSpec
from robot_rl.data.sampling import BatchPrefetcher
from robot_rl.data.spec import KeySpec
from robot_rl.env.robot_env import STATE_KEY
from robot_rl.rl.agent import SACAgent, gripper_choice, q_scale
from robot_rl.rl.checkpoints import CHECKPOINT, load_agent_state, load_checkpoint, save_checkpoint
from robot_rl.rl.run_log import WandbLog
from robot_rl.schema.training import OfflineConfig

log = logging.getLogger("robot_rl.offline")

MC_RETURN = "mc_return"  # the replay key holding each step's discounted return-to-go
METRICS = "metrics.jsonl"
MAX_WEIGHT = 20.0  # the largest advantage weight of one sample (AWAC's exp can overflow)


def discounted_returns(reward: np.ndarray, discount: float) -> np.ndarray:
    """Return-to-go of every step of one episode. After the last step nothing more is counted:
    for a termination that is exact, for a time limit it is a lower bound when rewards are
    ≥ 0 (calibration needs only a lower bound)."""
    out = np.zeros(len(reward), dtype=np.float32)
    running = 0.0
    for t in range(len(reward) - 1, -1, -1):
        running = float(reward[t]) + discount * running
        out[t] = running
    return out


class OfflineUpdater:
    """One gradient step of ``bc`` or ``calql`` on a batch, on a :class:`SACAgent`'s networks
    and optimisers (batches as the replay buffer gives them, plus ``mc_return`` for calql)."""

    def __init__(self, agent: SACAgent, cfg: OfflineConfig):
        self.agent, self.cfg = agent, cfg

    def update(self, batch: Mapping[str, Any]) -> dict[str, float]:
        agent = self.agent
        obs = batch["obs"]
        images = agent.encoder.backbone_features(agent.camera_inputs(obs, augment=True))
        state = obs[STATE_KEY].float()
        full_action = batch["action"].float()
        action = full_action[:, : agent.continuous_dim]
        with torch.autocast(agent.device.type, dtype=torch.bfloat16, enabled=agent.autocast):
            features = agent.encoder(images, state)
            weight = self._advantage_weights(features, action) if self.cfg.method == "calql" else None
            loss, squared = self._imitation(features, action, weight)
        metrics = {"bc_loss": squared.item()}
        if weight is not None:
            metrics["imitation_weight_max"] = weight.max().item()
        optimizers = [agent.critic_opt, agent.policy_opt]  # the critic's holds the encoder
        if self.cfg.method == "bc" and agent.gripper_q is not None:
            loss = loss + F.cross_entropy(agent.gripper_q(features.float()), gripper_choice(full_action[:, -1]))
            optimizers.append(agent.gripper_opt)
        if self.cfg.method == "calql":
            critic_loss, next_features, critic_metrics = self._critic_loss(batch, features.detach(), action)
            loss = loss + critic_loss
            metrics.update(critic_metrics)
        agent.optimizer_step(optimizers, loss)
        agent.updates += 1
        if self.cfg.method == "calql":
            agent.update_targets()
            if agent.gripper_q is not None:
                metrics.update(agent.update_gripper(
                    features.detach(), next_features, full_action[:, -1], batch["reward"].float().view(-1),
                    1.0 - batch["terminated"].float().view(-1), conservative=self.cfg.cql_alpha))
            if self.cfg.q_weight > 0:
                metrics.update(self._policy_step(features.detach()))
        return metrics

    def _critic_loss(self, batch: Mapping[str, Any], features: torch.Tensor,
                     action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """TD (floored at the return-to-go when calibrated) plus the conservative term, on
        the imitation-trained encoder's features (held fixed here)."""
        agent = self.agent
        next_obs = batch["next_obs"]
        reward = batch["reward"].float().view(-1)
        not_done = 1.0 - batch["terminated"].float().view(-1)
        mc_return = batch[MC_RETURN].float().view(-1)
        with torch.autocast(agent.device.type, dtype=torch.bfloat16, enabled=agent.autocast), torch.no_grad():
            next_images = agent.encoder.backbone_features(agent.camera_inputs(next_obs, augment=True))
            next_state = next_obs[STATE_KEY].float()
            next_features = agent.encoder(next_images, next_state)
            next_action, _ = agent.policy.sample(next_features)
            target_q = agent.target_critic(agent.target_encoder(next_images, next_state), next_action)
            # no entropy bonus in the backup (CQL's default): a policy as sharp as expert data has
            # log-probabilities far above 0, and the bonus would drive every value negative
            target = reward + agent.cfg.discount * not_done * target_q.min(dim=0).values.float()
            if self.cfg.calibrated:  # the recorded action is worth at least what followed it
                target = torch.maximum(target, mc_return)
        with torch.autocast(agent.device.type, dtype=torch.bfloat16, enabled=agent.autocast):
            q = agent.critic(features, action).float()
            td_loss = F.mse_loss(q, target.unsqueeze(0).expand_as(q), reduction="none").mean(1).sum()
            conservative, q_policy = self._conservative(features, next_features, q, mc_return)
        metrics = {"td_loss": td_loss.item(), "cql_loss": conservative.item(), "q": q.mean().item(),
                   "q_policy": q_policy, "target_q": target.mean().item(), "mc_return": mc_return.mean().item()}
        return td_loss + self.cfg.cql_alpha * conservative, next_features, metrics

    def _conservative(self, features: torch.Tensor, next_features: torch.Tensor, q_data: torch.Tensor,
                      mc_return: torch.Tensor) -> tuple[torch.Tensor, float]:
        """CQL(H)'s term, logsumexp over sampled actions of Q minus Q of the data's action, per
        critic; with ``calibrated`` the policy actions' Q is floored at the return (Cal-QL)."""
        agent, n = self.agent, self.cfg.cql_samples
        batch, dim = features.shape[0], agent.continuous_dim
        repeated = features.repeat_interleave(n, dim=0)
        with torch.no_grad():
            random_action = torch.rand(batch * n, dim, device=features.device) * 2 - 1
            policy_action, policy_log_prob = agent.policy.sample(repeated.detach())
            next_action, next_log_prob = agent.policy.sample(next_features.repeat_interleave(n, dim=0))

        def q_of(a: torch.Tensor) -> torch.Tensor:  # (critics, batch, n)
            return agent.critic(repeated, a).float().view(-1, batch, n)

        q_random = q_of(random_action) - dim * math.log(0.5)  # ÷ the uniform density on [-1, 1]^d
        q_policy, q_next = q_of(policy_action), q_of(next_action)
        if self.cfg.calibrated:
            floor = mc_return.view(1, batch, 1)
            q_policy, q_next = torch.maximum(q_policy, floor), torch.maximum(q_next, floor)
        stacked = torch.cat([q_random, q_policy - policy_log_prob.float().view(1, batch, n),
                             q_next - next_log_prob.float().view(1, batch, n)], dim=2)
        # a hinge: once the data's action is valued above the sampled ones by the margin the
        # importance weights leave, nothing more is pushed (CQL's push without end inflated the
        # data's values past any return)
        gap = F.relu(torch.logsumexp(stacked, dim=2) - q_data)
        return gap.mean(1).sum(), q_policy.mean().item()

    def _imitation(self, features: torch.Tensor, action: torch.Tensor,
                   weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, squared error): the squared error of the policy's mean action to the recorded
        one, plus that of a sampled action for the spread alone (the mean held fixed in it), so
        that the stochastic policy is as tight as the data; each sample weighted by ``weight``
        when given. (The recorded actions' likelihood would not do: at ±1, where a scripted or
        saturated command sits, the squashed mean is still far from it in pre-tanh terms, and
        the spread grew to cover the gap.)"""
        mean, log_std = self.agent.policy(features)
        squared = (torch.tanh(mean) - action).pow(2).mean(1)
        sampled = torch.tanh(mean.detach() + log_std.exp() * torch.randn_like(mean))
        per_sample = squared + (sampled - action).pow(2).mean(1)
        if weight is not None:
            per_sample = per_sample * weight
        return per_sample.mean(), squared.mean()

    def _advantage_weights(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor | None:
        """AWAC's weights (Nair et al., 2020): exp(λ · A) with A = Q(s, a) − Q(s, π(s)) by the
        critics (the ensemble's min; π's mean action), capped at MAX_WEIGHT and scaled to mean 1
        over the batch. The recorded actions better than what the policy would do count more,
        so on mixed data the policy follows the good episodes, not their average with the bad."""
        if self.cfg.advantage_weight == 0:
            return None
        agent = self.agent
        with torch.no_grad():
            features = features.detach()
            mean, _ = agent.policy(features)
            q_data = agent.critic(features, action).float().min(dim=0).values
            q_policy = agent.critic(features, torch.tanh(mean)).float().min(dim=0).values
            weight = torch.exp(self.cfg.advantage_weight * (q_data - q_policy)).clamp(max=MAX_WEIGHT)
            return weight / weight.mean()

    def _policy_step(self, features: torch.Tensor) -> dict[str, float]:
        """SAC's policy and temperature step, weighted ``q_weight`` (the imitation step is done)."""
        agent = self.agent
        sampled, log_prob = agent.policy.sample(features)
        log_prob = log_prob.float()
        q = agent.critic(features, sampled).float().mean(0)
        policy_loss = self.cfg.q_weight * (agent.alpha.detach() * log_prob - q).mean() / q_scale(q)
        agent.optimizer_step(agent.policy_opt, policy_loss, agent.policy.parameters())
        alpha_loss = -(agent.log_alpha * (log_prob.detach() + agent.target_entropy)).mean()
        agent.optimizer_step(agent.alpha_opt, alpha_loss, [agent.log_alpha])
        return {"policy_loss": policy_loss.item(), "alpha": agent.alpha.item(), "entropy": -log_prob.mean().item()}

# ---------------------------------------------------------------------- data
def load_offline_buffer(cfg: DictConfig, spec: StoreSpec) -> tuple[ReplayBuffer, dict[str, Any]]:
    """Every complete episode of the stores in ``cfg.data`` in one buffer, with its return-to-go;
    rewards relabeled by ``cfg.reward_model`` unless it is ``env``."""
    from robot_rl.rewards.relabel import relabel_episode
    from robot_rl.rewards.training import reward_config

    relabel = None
    if cfg.reward_model.name != "env":
        from robot_rl.rewards.factory import make_reward_model

        reward_model, rewards, task = make_reward_model(cfg), reward_config(cfg), cfg.task.name
        relabel = lambda episode: relabel_episode(episode, reward_model, task, list(cfg.cameras), rewards)  # noqa: E731
    stores = [EpisodeStore.open(path, mode="r") for path in data_paths(cfg)]
    try:
        for store in stores:
            if store.spec != spec:
                theirs = {k: (v.shape, v.dtype) for k, v in store.spec.obs.items()}
                raise ConfigError(f"invalid value for 'data': {store.path} holds observations {theirs} and "
                                  f"{store.spec.steps['action'].shape[0]}-d actions, not what this config "
                                  f"(cameras=, robot=, task=) gives; pass the config it was recorded with")
        selected = [(s, info) for s in stores for info in s.episodes(complete=True)]
        if not selected:
            raise ConfigError(f"invalid value for 'data': {cfg.data} holds no complete episode")
        buffer_spec = StoreSpec(spec.obs, {**spec.steps, MC_RETURN: KeySpec((), "float32")})
        buffer = ReplayBuffer(buffer_spec, sum(info.length + 1 for _, info in selected))
        tasks = sorted({info.task for _, info in selected if info.task})
        for store, info in selected:
            episode = store.load_episode(info.index)
            if relabel is not None:
                episode = relabel(episode)
            episode[MC_RETURN] = discounted_returns(np.asarray(episode["reward"]), cfg.agent.discount)
            buffer.add_episode(episode)
        summary = {"episodes": len(selected), "transitions": len(buffer), "tasks": tasks,
                   "successes": sum(bool(info.success) for _, info in selected)}
        return buffer, summary
    finally:
        for store in stores:
            store.close()


# ---------------------------------------------------------------------- the command
@dataclass
class OfflineReport:
    curve: list[tuple[int, float]] = field(default_factory=list)  # (updates, eval success)
    updates: int = 0
    episodes: int = 0
    transitions: int = 0
    checkpoint: Path | None = None
    wall_s: float = 0.0

    @property
    def final_success(self) -> float:
        return self.curve[-1][1] if self.curve else float("nan")


def train_offline(cfg: DictConfig, run_dir: Path, progress_bar: bool = True) -> OfflineReport:
    """``cfg.offline.updates`` updates on ``cfg.data``, evaluating in sim every
    ``offline.eval_every`` (and at the end); resumes from run_dir/checkpoint.pt if there is one."""
    from robot_rl.env.factory import spaces_from_config
    from robot_rl.rl.assembly import agent_for, config_section, pick_device

    started = time.perf_counter()
    ocfg = OfflineConfig(**config_section(cfg.offline, OfflineConfig))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    obs_space, action_dim = spaces_from_config(cfg)
    buffer, data = load_offline_buffer(cfg, StoreSpec.from_spaces(obs_space, action_dim))
    _log_data(cfg, data)
    agent = agent_for(cfg, obs_space, action_dim, pick_device(cfg.learner.device))
    report = OfflineReport(episodes=data["episodes"], transitions=data["transitions"])
    _resume(agent, report, run_dir / CHECKPOINT)
    _run_updates(cfg, OfflineUpdater(agent, ocfg), buffer, report, run_dir, progress_bar)
    report.updates, report.wall_s = agent.updates, time.perf_counter() - started
    return report


def _log_data(cfg: DictConfig, data: Mapping[str, Any]) -> None:
    """What the data holds; a warning when it was recorded on another task than the one evaluated."""
    log.info("offline data: %d episodes (%d successful), %d transitions, tasks %s", data["episodes"],
             data["successes"], data["transitions"], data["tasks"] or "unrecorded")
    if cfg.robot.backend == "sim" and data["tasks"] and data["tasks"] != [cfg.task.name]:
        log.warning("the data was recorded on task(s) %s but evaluation runs task=%s", data["tasks"], cfg.task.name)


def _resume(agent: SACAgent, report: OfflineReport, path: Path) -> None:
    """The agent and the eval curve from the checkpoint at ``path``, if there is one."""
    if path.exists():
        state = load_checkpoint(path, agent.device)
        load_agent_state(agent, state["agent"], path)
        report.curve = [tuple(p) for p in state.get("offline", {}).get("curve", [])]
        log.info("resumed from %s at update %d", path, agent.updates)


def _run_updates(cfg: DictConfig, updater: OfflineUpdater, buffer: ReplayBuffer, report: OfflineReport,
                 run_dir: Path, progress_bar: bool) -> None:
    """The updates still to make, on batches from ``buffer``: metrics every ``offline.log_every``,
    an evaluation in sim every ``offline.eval_every`` and at the end, a checkpoint every
    ``offline.checkpoint_every`` and at the end."""
    from robot_rl.rl.assembly import evaluate
    from robot_rl.robots import make_env

    agent, ocfg = updater.agent, updater.cfg
    eval_env = make_env(cfg) if cfg.robot.backend == "sim" and ocfg.eval_every > 0 else None
    wandb_log = WandbLog(cfg, run_dir, "offline")
    prefetcher = BatchPrefetcher(buffer, cfg.learner.batch_size, device=agent.device, seed=cfg.seed + agent.updates)
    bar = tqdm(total=ocfg.updates, initial=agent.updates, unit="update", disable=not progress_bar,
               dynamic_ncols=True)
    try:
        while agent.updates < ocfg.updates:
            metrics = updater.update(next(prefetcher))
            bar.update(1)
            if agent.updates % ocfg.log_every == 0:
                _log_metrics(metrics, agent.updates, run_dir, wandb_log, bar, report)
            due = eval_env is not None and (agent.updates % ocfg.eval_every == 0 or agent.updates == ocfg.updates)
            if due and (not report.curve or report.curve[-1][0] != agent.updates):
                success = evaluate(agent, eval_env, ocfg.eval_episodes)
                report.curve.append((agent.updates, success))
                wandb_log.log({"eval_success": success}, agent.updates)
                log.info("update %d: eval success %.2f", agent.updates, success)
            if agent.updates % ocfg.checkpoint_every == 0:
                _checkpoint(cfg, updater, report, run_dir / CHECKPOINT)
        _checkpoint(cfg, updater, report, run_dir / CHECKPOINT)
    finally:
        bar.close()
        prefetcher.close()
        wandb_log.close()
        if eval_env is not None:
            eval_env.close()


def _log_metrics(metrics: Mapping[str, float], updates: int, run_dir: Path, wandb_log: WandbLog, bar: tqdm,
                 report: OfflineReport) -> None:
    """One line of run_dir/metrics.jsonl, the same to wandb, and the progress bar's figures."""
    line = {"time": time.time(), "updates": updates, **metrics}
    with open(run_dir / METRICS, "a") as f:
        f.write(json.dumps(line) + "\n")
    wandb_log.log(metrics, updates)
    bar.set_postfix(loss=f"{metrics.get('critic_loss', metrics.get('bc_loss', 0)):.3f}",
                    **({"eval": f"{report.curve[-1][1]:.0%}"} if report.curve else {}))


def _checkpoint(cfg: DictConfig, updater: OfflineUpdater, report: OfflineReport, path: Path) -> None:
    """The agent, the method and the eval curve, saved atomically to ``path`` (``report.checkpoint``)."""
    report.checkpoint = save_checkpoint(path, {
        "agent": updater.agent.state_dict(), "weights_version": 0,
        "offline": {"method": updater.cfg.method, "curve": [list(p) for p in report.curve], "data": str(cfg.data)}})

"""The learner program (``robot-rl learner``): serves actors over gRPC and trains.

The learner listens on ``learner.address`` and writes ``learner.json`` (its port) into its
run folder once it serves. Learner and actors need the same token: ``learner.token`` or the
``ROBOT_RL_TOKEN`` environment variable (``robot-rl train`` makes a fresh one and passes it on).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from robot_rl.config import ConfigError
from robot_rl.env.factory import spaces_from_config
from robot_rl.files import atomic_write_text
from robot_rl.rewards.training import relabeler_for
from robot_rl.rl.assembly import agent_for, config_section, demo_sources, pick_device
from robot_rl.rl.learner import Learner
from robot_rl.rl.run_log import WandbLog
from robot_rl.rl.supervisor import wait_for_file
from robot_rl.schema.training import LearnerConfig

log = logging.getLogger("robot_rl.learner")

TOKEN_ENV = "ROBOT_RL_TOKEN"

LEARNER_INFO = "learner.json"


def resolve_token(cfg: DictConfig) -> str:
    token = cfg.learner.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigError(f"invalid value for 'learner.token': no token; set learner.token or ${TOKEN_ENV} "
                          f"(the same on learner and actors)")
    return token


def tls_config(cfg: DictConfig):
    from robot_rl.transport.server import TLSConfig

    tls = cfg.learner.tls
    return TLSConfig(tls.cert, tls.key, tls.ca) if (tls.cert or tls.ca) else None


def run_learner(cfg: DictConfig, run_dir: Path, stop: threading.Event | None = None) -> Learner:
    """Serve actors and train until ``stop`` is set (or SIGTERM/SIGINT); checkpoint on the way out."""
    from robot_rl.data import StoreSpec
    from robot_rl.transport.server import LearnerServer

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    if cfg.train.threads:
        import torch

        torch.set_num_threads(cfg.train.threads)
    obs_space, action_dim = spaces_from_config(cfg)
    agent = agent_for(cfg, obs_space, action_dim, pick_device(cfg.learner.device))
    demos = demo_sources(cfg, run_dir)
    wandb_log = WandbLog(cfg, run_dir, "learner")
    learner = Learner(agent, StoreSpec.from_spaces(obs_space, action_dim),
                      LearnerConfig(**config_section(cfg.learner, LearnerConfig)), run_dir / "learner", demos,
                      seed=cfg.seed, log_metrics=wandb_log.log, relabeler=relabeler_for(cfg), init=cfg.init)
    server = LearnerServer(cfg.learner.address, resolve_token(cfg), learner.ingest, tls=tls_config(cfg))
    learner.publish_fn = server.publish_weights
    server.start()
    learner.publish()  # actors can start acting with the initial (or restored) policy
    info = {"port": server.port, "pid": os.getpid(), "updates": agent.updates}
    atomic_write_text(run_dir / LEARNER_INFO, json.dumps(info))  # an actor never reads half of it
    log.info("learner serving on port %d (updates so far %d, env steps %d)", server.port, agent.updates,
             learner.env_steps)
    last_log, last_updates = time.monotonic(), agent.updates
    try:
        while not stop.is_set():
            if learner.updates_due() > 0:
                metrics = learner.update()
                now = time.monotonic()
                if now - last_log > 10:
                    rate = (agent.updates - last_updates) / (now - last_log)
                    recent = learner.successes[-20:]
                    log.info("learner: env steps %d, episodes %d, success %.0f%%, updates %d (%.1f/s), "
                             "critic loss %.3f, q %.2f", learner.env_steps, learner.episodes_received,
                             100 * np.mean(recent) if recent else 0.0, agent.updates, rate,
                             metrics["critic_loss"], metrics["q"])
                    last_log, last_updates = now, agent.updates
            else:
                stop.wait(0.005)
    finally:
        server.stop(grace=1.0)
        learner.checkpoint()
        learner.close()
        wandb_log.close()
        log.info("learner stopped at update %d; checkpoint in %s", agent.updates, learner.run_dir)
    return learner


def learner_address(cfg: DictConfig, run_dir: Path, wait_s: float = 120.0) -> str:
    """``learner.address``; a port of 0 means: read the port the local learner wrote."""
    host, port = cfg.learner.address.rsplit(":", 1)
    if port != "0":
        return cfg.learner.address
    return f"{host}:{learner_port(run_dir, wait_s)}"


def learner_port(run_dir: Path, wait_s: float, process: Any = None) -> int:
    """The port the learner of this run folder wrote once it served, waiting up to ``wait_s``
    (``process``: the learner's :class:`Supervised`, whose death ends the wait)."""
    wait_for_file(run_dir / LEARNER_INFO, wait_s, "learner", process)
    return int(json.loads((run_dir / LEARNER_INFO).read_text())["port"])

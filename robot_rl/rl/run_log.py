"""Experiment logging to Weights & Biases: offline (files under the run folder) unless an
API key is configured, and nothing at all with ``logging.wandb=disabled``.

No secret reaches wandb: the config it stores is :func:`robot_rl.secrets.redact`'s, and wandb
neither records the command line (where ``learner.token=...`` may stand) and host metadata
nor captures the terminal's output (where the console's key is printed)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from robot_rl.secrets import redact

MODES = ("auto", "offline", "online", "disabled")


class WandbLog:
    """``log(metrics)`` into a wandb run; ``mode=auto`` is online only when WANDB_API_KEY is set."""

    def __init__(self, cfg: DictConfig, run_dir: Path, job: str):
        mode = cfg.logging.wandb
        if mode not in MODES:
            raise ValueError(f"logging.wandb must be one of {MODES}, got {mode!r}")
        if mode == "auto":
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
        self.run = None
        if mode == "disabled":
            return
        import wandb

        settings = wandb.Settings(console="off", x_disable_meta=True, disable_git=True, disable_code=True,
                                  save_code=False)
        self.run = wandb.init(project=cfg.logging.project, dir=str(run_dir), mode=mode, job_type=job,
                              config=redact(cfg), name=run_dir.name, reinit=True, settings=settings)

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if self.run is not None:
            self.run.log({k: v for k, v in metrics.items() if v is not None}, step=step)

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None

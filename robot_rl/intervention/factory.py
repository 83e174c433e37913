"""The operator's devices from config, and the env wrapped so they act through it."""

from __future__ import annotations

import os
import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robot_rl.config import ConfigError
from robot_rl.env.robot_env import RobotEnv
from robot_rl.intervention.mapping import TeleopMapper, TwistMapping
from robot_rl.intervention.wrapper import InterventionConfig, InterventionWrapper
from robot_rl.schema.robot import DEVICES
from robot_rl.teleop.device import DeviceGroup, TeleopDevice

CONSOLE_TOKEN_ENV = "ROBOT_RL_CONSOLE_TOKEN"  # the console's key when console.token is not set


def make_device(cfg: DictConfig, env: RobotEnv) -> TeleopDevice | None:
    t = cfg.teleop
    if t.device == "none":
        return None
    if t.device == "keyboard":
        from robot_rl.teleop.keyboard import Keyboard

        return Keyboard()
    if t.device == "spacemouse":
        from robot_rl.teleop.spacemouse import SpaceMouse, SpaceMouseConfig

        return SpaceMouse(SpaceMouseConfig(deadzone=t.deadzone))
    if t.device == "gamepad":
        from robot_rl.teleop.gamepad import Gamepad, GamepadConfig

        return Gamepad(GamepadConfig(deadzone=t.deadzone))
    if t.device == "sim_expert":
        from robot_rl.sim.backend import SimBackend
        from robot_rl.sim.operator import SimOperator, SimOperatorConfig

        if not isinstance(env.unwrapped.backend, SimBackend):
            raise ConfigError("invalid value for 'teleop.device': sim_expert needs the simulated robot (robot=sim)")
        return SimOperator(env, SimOperatorConfig(t.stuck_steps, t.guide_steps, t.budget_start, t.budget_end,
                                                  t.decay_episodes), seed=cfg.seed)
    if t.device == "ros":
        raise ConfigError("invalid value for 'teleop.device': ros reads teleop_node's topics, which only actor_node "
                          "subscribes to (ros2 launch robot_rl hil_rl.launch.py)")
    raise ConfigError(f"invalid value for 'teleop.device': unknown device {t.device!r}; choose one of {DEVICES}")


def with_operator(env: RobotEnv, cfg: DictConfig, token: str | None = None, operator_only: bool = False,
                  device: TeleopDevice | None = None) -> tuple[Any, Any | None]:
    """``env`` behind an InterventionWrapper when there is a device or a console, and the console.

    ``operator_only``: recording demonstrations, every step is the operator's. ``device``:
    one built by the caller (actor_node's teleop topics) instead of ``cfg.teleop``'s.
    ``token``: ignored, kept for old callers; the console never uses the actor⇄learner run
    token. Its key is ``console.token``, else ``$ROBOT_RL_CONSOLE_TOKEN``, else a fresh one;
    the URL that carries it is printed once, to stderr."""
    devices = []
    device = device if device is not None else make_device(cfg, env)
    if device is not None:
        devices.append(device)
    console = None
    if cfg.console.enabled:
        from robot_rl.console.server import Console

        key = cfg.console.token or os.environ.get(CONSOLE_TOKEN_ENV) or None
        run_tokens = {t for t in (token, OmegaConf.select(cfg, "learner.token", default=None),
                                  os.environ.get("ROBOT_RL_TOKEN")) if t}
        if key is not None and key in run_tokens:
            raise ConfigError("invalid value for 'console.token': it must not be the run's learner token "
                              "(leave it unset for a fresh key)")
        try:
            console = Console(cfg.console.host, cfg.console.port, key=key)
        except ValueError as e:
            raise ConfigError(f"invalid value for 'console.token' (or ${CONSOLE_TOKEN_ENV}): {e}") from None
        except OSError as e:
            raise ConfigError(f"invalid value for 'console.port': cannot serve the console on "
                              f"{cfg.console.host}:{cfg.console.port}: {e.strerror or e}") from None
        anywhere = " (or any of this machine's addresses)" if cfg.console.host in ("0.0.0.0", "::", "") else ""
        print(f"operator console: open {console.login_url}{anywhere} once in the browser; the key is this "
              f"console's alone and a cookie keeps the session", file=sys.stderr, flush=True)
        devices.append(console)
    if not devices:
        return env, None
    mapper = TeleopMapper(env.action_spec, TwistMapping(cfg.teleop.frame, cfg.teleop.operator_yaw))
    group = devices[0] if len(devices) == 1 else DeviceGroup(devices)
    config = InterventionConfig(cfg.teleop.deadzone, cfg.teleop.end_on_label, operator_only)
    return InterventionWrapper(env, group, mapper, config), console

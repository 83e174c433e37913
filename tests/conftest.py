import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYNPUT_BACKEND", "dummy")  # no display here; the Xvfb test picks xorg itself

import pytest

from robot_rl.robots import make_env
from robot_rl.schema import load_config


@pytest.fixture
def make_sim_env():
    """Build sim envs from config overrides; closes them after the test."""
    envs = []

    def build(*overrides: str, with_cameras: bool = True, render_mode: str | None = None):
        env = make_env(load_config(list(overrides)), render_mode=render_mode, with_cameras=with_cameras)
        envs.append(env)
        return env

    yield build
    for env in envs:
        env.close()

"""What `robot-rl data info | check | video` show of an EpisodeStore."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from robot_rl.data.episode_store import EpisodeStore
from robot_rl.data.spec import LABEL_FAILURE, LABEL_SUCCESS
from robot_rl.report import format_table


def disk_bytes(path: str | Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def store_info(store: EpisodeStore) -> str:
    """Per-source table: episodes, steps, success rate; then totals and size on disk."""
    infos = store.episodes()
    rows = []
    for source, count in sorted(Counter(e.source for e in infos).items()):
        eps = [e for e in infos if e.source == source]
        judged = [e.success for e in eps if e.success is not None]
        rows.append([source, count, sum(e.length for e in eps),
                     f"{np.mean(judged):.0%}" if judged else "-", sum(not e.complete for e in eps)])
    judged = [e.success for e in infos if e.success is not None]
    rows.append(["all", len(infos), sum(e.length for e in infos), f"{np.mean(judged):.0%}" if judged else "-",
                 sum(not e.complete for e in infos)])
    size = disk_bytes(store.path)
    cameras = ", ".join(f"{k} {'×'.join(map(str, store.spec.obs[k].shape))}" for k in store.spec.image_keys)
    return "\n".join([
        f"store: {store.path}",
        f"cameras: {cameras or 'none'}; size on disk: {size / 2**20:.1f} MiB",
        format_table(["source", "episodes", "steps", "success", "unfinished"], rows),
    ])


def episode_frames(store: EpisodeStore, index: int) -> list[np.ndarray]:
    """The episode's camera views side by side, one frame per observation, with step, reward,
    intervention and label written over them."""
    episode = store.load_episode(index)
    cameras = store.spec.image_keys
    if not cameras:
        raise ValueError(f"{store.path} holds no camera images to make a video of")
    length = len(episode["reward"])
    frames = []
    for t in range(length + 1):
        tiles = [episode["obs"][c][t] for c in cameras]
        height = max(tile.shape[0] for tile in tiles)
        scale = max(1, 256 // height)  # small policy images are hard to read at their own size
        frame = np.concatenate([np.pad(tile, ((0, height - tile.shape[0]), (0, 0), (0, 0))) for tile in tiles], 1)
        frame = np.ascontiguousarray(np.kron(frame, np.ones((scale, scale, 1), dtype=np.uint8)))
        text = f"t={t}"
        if t > 0:
            text += f" r={episode['reward'][t - 1]:.2f}"
            if episode["intervention"][t - 1]:
                text += " HUMAN"
            label = int(episode["label"][t - 1])
            text += {LABEL_SUCCESS: " SUCCESS", LABEL_FAILURE: " FAILURE"}.get(label, "")
        cv2.putText(frame, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        frames.append(frame)
    return frames

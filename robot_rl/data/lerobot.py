"""EpisodeStores to and from LeRobotDataset folders (the v2.1 layout: one parquet file per
episode, one mp4 per camera per episode, and meta/ JSON files).

What maps, and how:

- ``observation.images.<camera>`` (video, or image in the parquet) ↔ the store's camera
  ``<camera>``; an import puts frames through the configured crop and resize.
- ``observation.state`` ↔ ``state``; ``action`` ↔ ``action``. robot_rl's actions are
  normalised commands in [-1, 1]: an import refuses actions outside that box (a dataset of
  raw joint targets does not map) and vectors of another length.
- ``next.reward`` ↔ ``reward``. An export marks the last frame ``next.done`` and, for a
  successful episode, ``next.success``. An import ends an episode in success when its last
  frame says ``next.success`` (or, without that column, ``next.done`` with a positive
  reward); any other ending is a time limit.
- A LeRobot episode of N frames holds N observations and N actions; the observation the
  last action led to is not recorded. So an export drops each episode's final observation,
  and an import repeats the last frame as the final observation.

LeRobot v3.0 (many episodes per file) is not read: convert such a dataset with LeRobot's
tools, or record into an EpisodeStore directly.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.data.episode_store import EpisodeStore
from robot_rl.data.spec import StoreSpec
from robot_rl.data.store_format import EpisodeInfo

CODEBASE_VERSION = "v2.1"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
IMAGE_PREFIX = "observation.images."
STATE, ACTION = "observation.state", "action"
STATE_KEY = "state"


class LeRobotError(ValueError):
    """A dataset that cannot be read or does not map onto the store; one line."""


# ---------------------------------------------------------------------- export
def export_lerobot(store: EpisodeStore, out: str | Path, fps: float, task: str | None = None,
                   robot_type: str | None = None) -> int:
    """Write the store's complete episodes as a LeRobotDataset folder ``out`` (which must not
    exist, or be empty); returns the number of frames written."""
    out = Path(out)
    cameras, infos = _exportable(store, out)
    tasks = sorted({task or info.task or "task" for info in infos})
    task_index = {name: i for i, name in enumerate(tasks)}
    frames = 0
    episodes_meta, stats_meta = [], []
    try:
        for j, info in enumerate(infos):
            name = task or info.task or "task"
            stats = _export_episode(store, info, j, frames, task_index[name], cameras, out, fps)
            episodes_meta.append({"episode_index": j, "tasks": [name], "length": info.length})
            stats_meta.append({"episode_index": j, "stats": stats})
            frames += info.length
        _write_meta(out / "meta", _info_json(store, cameras, fps, robot_type, len(infos), frames, len(tasks)),
                    episodes_meta, tasks, stats_meta)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half-written dataset left behind
        raise
    return frames


def _exportable(store: EpisodeStore, out: Path) -> tuple[list[str], list[EpisodeInfo]]:
    """The store's cameras and complete episodes, once ``out`` and the store are known to suit an export."""
    if out.exists() and any(out.iterdir()):
        raise LeRobotError(f"{out} exists and is not empty; export into a new folder")
    cameras = [k for k, s in store.spec.obs.items() if s.is_image]
    if STATE_KEY not in store.spec.obs:
        raise LeRobotError(f"{store.path} has no '{STATE_KEY}' observation to export")
    infos = store.episodes(complete=True)
    if not infos:
        raise LeRobotError(f"{store.path} holds no complete episode to export")
    return cameras, infos


def _export_episode(store: EpisodeStore, info: EpisodeInfo, j: int, first_frame: int, task_index: int,
                    cameras: list[str], out: Path, fps: float) -> dict[str, Any]:
    """Write episode ``j`` (the store's ``info``) as its parquet file and one video per camera;
    return its per-column stats."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = store.load_episode(info.index)
    columns = _episode_columns(data, info, j, first_frame, task_index, fps)
    path = out / DATA_PATH.format(episode_chunk=j // CHUNKS_SIZE, episode_index=j)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: list(v) if v.ndim == 2 else v for k, v in columns.items()})
    pq.write_table(table, path)
    stats = {k: _stats(v) for k, v in columns.items()}
    n = info.length
    for cam in cameras:
        video = out / VIDEO_PATH.format(episode_chunk=j // CHUNKS_SIZE, video_key=IMAGE_PREFIX + cam,
                                        episode_index=j)
        _write_video(video, np.asarray(data["obs"][cam][:n]), fps)
        stats[IMAGE_PREFIX + cam] = _image_stats(np.asarray(data["obs"][cam][:n]))
    return stats


def _episode_columns(data: Mapping[str, Any], info: EpisodeInfo, j: int, first_frame: int, task_index: int,
                     fps: float) -> dict[str, np.ndarray]:
    """The parquet columns of one episode: its first N observations, N actions and rewards, and indices."""
    n = info.length
    done = np.zeros(n, dtype=bool)
    done[-1] = True
    return {
        STATE: np.asarray(data["obs"][STATE_KEY][:n], np.float32),
        ACTION: np.asarray(data["action"], np.float32),
        "timestamp": (np.arange(n) / fps).astype(np.float32),
        "frame_index": np.arange(n, dtype=np.int64),
        "episode_index": np.full(n, j, dtype=np.int64),
        "index": np.arange(first_frame, first_frame + n, dtype=np.int64),
        "task_index": np.full(n, task_index, dtype=np.int64),
        "next.reward": np.asarray(data["reward"], np.float32),
        "next.done": done,
        "next.success": done & bool(info.success),
    }


def _info_json(store: EpisodeStore, cameras: list[str], fps: float, robot_type: str | None, episodes: int,
               frames: int, tasks: int) -> dict[str, Any]:
    return {
        "codebase_version": CODEBASE_VERSION, "robot_type": robot_type, "total_episodes": episodes,
        "total_frames": frames, "total_tasks": tasks, "total_videos": episodes * len(cameras),
        "total_chunks": (episodes - 1) // CHUNKS_SIZE + 1, "chunks_size": CHUNKS_SIZE, "fps": fps,
        "splits": {"train": f"0:{episodes}"}, "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if cameras else None, "features": _features(store, cameras, fps),
    }


def _write_meta(meta: Path, info_json: dict[str, Any], episodes_meta: list[dict[str, Any]], tasks: list[str],
                stats_meta: list[dict[str, Any]]) -> None:
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "info.json").write_text(json.dumps(info_json, indent=4))
    _write_jsonl(meta / "episodes.jsonl", episodes_meta)
    _write_jsonl(meta / "tasks.jsonl", [{"task_index": i, "task": t} for i, t in enumerate(tasks)])
    _write_jsonl(meta / "episodes_stats.jsonl", stats_meta)


def _features(store: EpisodeStore, cameras: list[str], fps: float) -> dict[str, Any]:
    scalar = lambda dtype: {"dtype": dtype, "shape": [1], "names": None}  # noqa: E731
    features: dict[str, Any] = {}
    for cam in cameras:
        h, w, c = store.spec.obs[cam].shape
        features[IMAGE_PREFIX + cam] = {
            "dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channels"],
            "info": {"video.fps": fps, "video.height": h, "video.width": w, "video.channels": c,
                     "video.codec": "h264", "video.pix_fmt": "yuv444p", "video.is_depth_map": False,
                     "has_audio": False}}
    features[STATE] = {"dtype": "float32", "shape": list(store.spec.obs[STATE_KEY].shape), "names": None}
    features[ACTION] = {"dtype": "float32", "shape": list(store.spec.steps["action"].shape), "names": None}
    features.update({"timestamp": scalar("float32"), "frame_index": scalar("int64"),
                     "episode_index": scalar("int64"), "index": scalar("int64"), "task_index": scalar("int64"),
                     "next.reward": scalar("float32"), "next.done": scalar("bool"), "next.success": scalar("bool")})
    return features


def _stats(values: np.ndarray) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    return {"min": v.min(0).tolist(), "max": v.max(0).tolist(), "mean": v.mean(0).tolist(),
            "std": v.std(0).tolist(), "count": [len(v)]}


def _image_stats(frames: np.ndarray) -> dict[str, Any]:
    """Per channel, on [0, 1] pixel values, shaped (C, 1, 1) as LeRobot keeps them."""
    v = frames.reshape(-1, frames.shape[-1]).astype(np.float64) / 255.0
    shaped = lambda x: [[[float(c)]] for c in x]  # noqa: E731
    return {"min": shaped(v.min(0)), "max": shaped(v.max(0)), "mean": shaped(v.mean(0)), "std": shaped(v.std(0)),
            "count": [len(frames)]}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """H.264 at constant quality 0 in 4:4:4: the frames come back within a grey level or two."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=None, pixelformat="yuv444p",
                            macro_block_size=1, output_params=["-crf", "0"], ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(frame)


# ---------------------------------------------------------------------- import
def import_lerobot(root: str | Path, store: EpisodeStore, transforms: Mapping[str, Callable[[np.ndarray], np.ndarray]],
                   source: str = "demo") -> tuple[int, int]:
    """Append every episode of the LeRobotDataset at ``root`` to ``store``; ``transforms``
    turns each camera's recorded frame into the store's (crop and resize). All of an episode is
    converted and checked before any of it is written. Returns (episodes, steps)."""
    root = Path(root)
    info = check_lerobot(root, store.spec)
    features = info["features"]
    cameras = [k for k, s in store.spec.obs.items() if s.is_image]
    tasks = {row["task_index"]: row["task"] for row in _read_jsonl(root / "meta" / "tasks.jsonl")}
    episodes = sorted(_read_jsonl(root / "meta" / "episodes.jsonl"), key=lambda row: row["episode_index"])
    steps = 0
    for row in episodes:
        j = int(row["episode_index"])
        episode = _read_episode(root, info, j, cameras, features, transforms)
        name = tasks.get(int(episode.pop("task_index")), "") if tasks else ""
        _append(store, episode, source, name or (row.get("tasks") or [""])[0], f"{root.name}#{j}")
        steps += len(episode["action"])
    return len(episodes), steps


def check_lerobot(root: str | Path, spec: StoreSpec) -> dict[str, Any]:
    """The dataset's meta/info.json, once it is known to map onto a store of ``spec``."""
    root = Path(root)
    info = _read_json(root / "meta" / "info.json")
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v2"):
        raise LeRobotError(f"{root} is a LeRobotDataset {version or 'of unknown version'}; only the v2.x layout "
                           f"(one parquet file per episode) is read")
    features = info.setdefault("features", {})
    missing = [IMAGE_PREFIX + k for k, s in spec.obs.items() if s.is_image and IMAGE_PREFIX + k not in features]
    if missing:
        have = sorted(k for k in features if k.startswith(IMAGE_PREFIX))
        raise LeRobotError(f"{root} has no {missing}; its cameras are {have}")
    for key, want in ((STATE, spec.obs[STATE_KEY].shape), (ACTION, spec.steps["action"].shape)):
        got = tuple(features.get(key, {}).get("shape", ()))
        if got != tuple(want):
            raise LeRobotError(f"{root}: '{key}' has shape {list(got) or 'none'}, this config's is {list(want)}")
    return info


def _read_episode(root: Path, info: Mapping[str, Any], j: int, cameras: list[str], features: Mapping[str, Any],
                  transforms: Mapping[str, Callable[[np.ndarray], np.ndarray]]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    chunk = j // int(info.get("chunks_size", CHUNKS_SIZE))
    path = root / str(info["data_path"]).format(episode_chunk=chunk, episode_index=j)
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as e:
        raise LeRobotError(f"episode {j}: cannot read {path}: {str(e).splitlines()[0]}") from None
    n = table.num_rows
    if n == 0:
        raise LeRobotError(f"episode {j}: {path} has no frames")
    cols = set(table.column_names)
    for key in (STATE, ACTION):
        if key not in cols:
            raise LeRobotError(f"episode {j}: {path} has no '{key}' column")
    state = np.asarray(table.column(STATE).to_pylist(), dtype=np.float32)
    action = np.asarray(table.column(ACTION).to_pylist(), dtype=np.float32)
    if not (np.isfinite(state).all() and np.isfinite(action).all()):
        raise LeRobotError(f"episode {j}: non-finite state or action values")
    if np.abs(action).max() > 1.0 + 1e-6:
        raise LeRobotError(f"episode {j}: actions reach {np.abs(action).max():.3g}, outside [-1, 1]: they are not "
                           f"robot_rl's normalised commands, so this dataset does not map")
    column = lambda key, default: (np.asarray(table.column(key).to_pylist()).reshape(n) if key in cols  # noqa: E731
                                   else np.full(n, default))
    reward = column("next.reward", 0.0).astype(np.float32)
    done = column("next.done", False).astype(bool)
    done[-1] = True
    success = bool(column("next.success", False)[-1]) if "next.success" in cols else bool(done[-1] and reward[-1] > 0)
    images = {}
    for cam in cameras:
        key = IMAGE_PREFIX + cam
        if features[key].get("dtype") == "video":
            video = root / str(info["video_path"]).format(episode_chunk=chunk, video_key=key, episode_index=j)
            raw = _read_video(video, n, j)
        elif key in cols:
            raw = [_decode_image(cell, j) for cell in table.column(key).to_pylist()]
        else:
            raise LeRobotError(f"episode {j}: no frames for '{key}'")
        frames = np.stack([transforms[cam](frame) for frame in raw])
        images[cam] = np.concatenate([frames, frames[-1:]])  # the final observation: the last frame again
    terminated = np.zeros(n, dtype=bool)
    terminated[-1] = success
    return {"obs": {**images, STATE_KEY: np.concatenate([state, state[-1:]])}, "action": action,
            "reward": reward, "terminated": terminated, "truncated": ~terminated & done,
            "success": success, "task_index": int(column("task_index", 0)[0])}


def _append(store: EpisodeStore, episode: dict[str, Any], source: str, task: str, origin: str) -> None:
    obs, n = episode["obs"], len(episode["action"])
    specs = store.spec.obs
    for key, value in obs.items():
        if value.shape[1:] != specs[key].shape:
            raise LeRobotError(f"{origin}: '{key}' frames are {value.shape[1:]}, the store's are {specs[key].shape}")
    store.begin_episode({k: v[0].astype(specs[k].dtype) for k, v in obs.items()}, source=source, task=task,
                        origin=origin)
    for t in range(n):
        store.append_step(obs={k: v[t + 1].astype(specs[k].dtype) for k, v in obs.items()},
                          action=episode["action"][t], reward=episode["reward"][t],
                          terminated=episode["terminated"][t], truncated=episode["truncated"][t])
    store.end_episode(success=episode["success"])


def _read_video(path: Path, n: int, j: int) -> list[np.ndarray]:
    import imageio.v2 as imageio

    if not path.is_file():
        raise LeRobotError(f"episode {j}: no video {path}")
    try:
        with imageio.get_reader(str(path)) as reader:
            frames = [np.asarray(frame) for _, frame in zip(range(n), reader, strict=False)]
    except (OSError, RuntimeError) as e:
        raise LeRobotError(f"episode {j}: cannot decode {path}: {str(e).splitlines()[0]}") from None
    if len(frames) < n:
        raise LeRobotError(f"episode {j}: {path} holds {len(frames)} frames, the episode {n}")
    return frames


def _decode_image(cell: Any, j: int) -> np.ndarray:
    import cv2

    data = cell.get("bytes") if isinstance(cell, Mapping) else cell
    image = cv2.imdecode(np.frombuffer(data or b"", np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise LeRobotError(f"episode {j}: an image cell does not decode")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LeRobotError(f"no {path}: not a LeRobotDataset folder") from None
    except json.JSONDecodeError as e:
        raise LeRobotError(f"{path} is not valid JSON ({e})") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise LeRobotError(f"no {path}: not a LeRobotDataset folder") from None
    except json.JSONDecodeError as e:
        raise LeRobotError(f"{path} is not valid JSON lines ({e})") from None

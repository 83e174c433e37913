"""LeRobotDataset (v2.1) export and import: the layout LeRobot reads, a round trip that keeps
what maps, and one-line errors for datasets that do not map."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robot_rl.cli import main
from robot_rl.data import EpisodeStore

CAMERAS = ["cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]", "cameras.wrist.resolution=[32,32]",
           "cameras.wrist.size=[32,32]"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot")
    store = root / "demos.zarr"
    common = ["task=pick_cube", *CAMERAS, "logging.progress_bar=false"]
    assert main(["rollout", *common, "policy=expert", "episodes=2", f"record={store}", f"run_dir={root / 'a'}"]) == 0
    assert main(["rollout", *common, "policy=random", "episodes=1", "task.max_steps=6", f"record={store}",
                 f"run_dir={root / 'b'}"]) == 0  # a time limit, not a success
    dataset = root / "dataset"
    assert main(["data", "export-lerobot", str(store), f"out={dataset}", "fps=10", "task=pick up the cube"]) == 0
    return store, dataset


def test_export_writes_the_v21_layout(recorded):
    _, dataset = recorded
    info = json.loads((dataset / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v2.1" and info["total_episodes"] == 3 and info["fps"] == 10
    assert info["features"]["observation.images.front"]["dtype"] == "video"
    assert info["features"]["action"]["shape"] == [4]
    episodes = [json.loads(line) for line in (dataset / "meta" / "episodes.jsonl").read_text().splitlines()]
    assert [e["tasks"] for e in episodes] == [["pick up the cube"]] * 3
    table = pq.read_table(dataset / "data" / "chunk-000" / "episode_000000.parquet")
    assert {"observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index",
            "next.reward", "next.done", "next.success"} <= set(table.column_names)
    assert table.num_rows == episodes[0]["length"] == info["total_frames"] - sum(e["length"] for e in episodes[1:])
    assert (dataset / "videos" / "chunk-000" / "observation.images.wrist" / "episode_000002.mp4").is_file()
    stats = json.loads((dataset / "meta" / "episodes_stats.jsonl").read_text().splitlines()[0])["stats"]
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)


def test_import_gives_back_the_episodes(recorded, tmp_path, capsys):
    store, dataset = recorded
    back = tmp_path / "back.zarr"
    assert main(["data", "import-lerobot", str(dataset), f"out={back}", "task=pick_cube", *CAMERAS]) == 0
    assert "3 episodes" in capsys.readouterr().out
    with EpisodeStore.open(store) as a, EpisodeStore.open(back) as b:
        assert [e.success for e in b.episodes()] == [e.success for e in a.episodes()] == [True, True, False]
        assert b.episodes()[0].task == "pick up the cube" and b.episodes()[0].source == "demo"
        for i in range(3):
            x, y = a.load_episode(i), b.load_episode(i)
            np.testing.assert_array_equal(x["action"], y["action"])
            np.testing.assert_array_equal(x["reward"], y["reward"])
            np.testing.assert_array_equal(x["terminated"], y["terminated"])
            np.testing.assert_array_equal(x["truncated"], y["truncated"])
            np.testing.assert_array_equal(x["obs"]["state"][:-1], y["obs"]["state"][:-1])
            for cam in ("front", "wrist"):
                diff = np.abs(x["obs"][cam][:-1].astype(int) - y["obs"][cam][:-1].astype(int))
                assert diff.mean() < 1.0 and diff.max() <= 8  # H.264 at quality 0, 4:4:4
                np.testing.assert_array_equal(y["obs"][cam][-1], y["obs"][cam][-2])  # final obs: last frame again


def test_datasets_that_do_not_map_are_one_line_errors(recorded, tmp_path, capsys):
    store, dataset = recorded
    out = tmp_path / "x.zarr"

    def fails(path, *extra) -> str:
        assert main(["data", "import-lerobot", str(path), f"out={out}", "task=pick_cube", *CAMERAS, *extra]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        return err

    assert "not a LeRobotDataset folder" in fails(tmp_path / "nothing")
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    info = json.loads((copy / "meta" / "info.json").read_text())
    (copy / "meta" / "info.json").write_text(json.dumps({**info, "codebase_version": "v3.0"}))
    assert "only the v2.x layout" in fails(copy)
    (copy / "meta" / "info.json").write_text(json.dumps(info))
    assert "its cameras are" in fails(copy, "+cameras.side.size=[32,32]", "+cameras.side.resolution=[32,32]")
    assert not out.exists()  # nothing is created for a dataset that does not map
    # raw joint targets instead of normalised commands
    path = copy / "data" / "chunk-000" / "episode_000001.parquet"
    table = pq.read_table(path)
    actions = [[a * 40 for a in row] for row in table.column("action").to_pylist()]
    pq.write_table(table.set_column(table.column_names.index("action"), "action", pa.array(actions)), path)
    assert "outside [-1, 1]" in fails(copy)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert "cannot read" in fails(copy)
    (copy / "videos" / "chunk-000" / "observation.images.front" / "episode_000000.mp4").unlink()
    assert "no video" in fails(copy)
    # an episode that fails is never half-written; the ones before it are whole
    with EpisodeStore.open(out) as partial:
        assert all(e.complete for e in partial.episodes())

    assert main(["data", "export-lerobot", str(store), f"out={dataset}"]) == 2  # never over an existing dataset
    assert "not empty" in capsys.readouterr().err

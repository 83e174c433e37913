import imageio.v3 as iio
import pytest
import yaml

from robot_rl.cli import main
from robot_rl.config import ConfigError
from robot_rl.schema import load_config


def test_rollout_prints_a_table_writes_config_and_video(tmp_path, capsys):
    video = tmp_path / "views.mp4"
    code = main(["rollout", "task=reach", "policy=expert", "episodes=2", f"run_dir={tmp_path / 'run'}",
                 f"video={video}", "logging.progress_bar=false"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("episode"))
    assert lines[header].split() == ["episode", "seed", "steps", "success", "return"]
    assert lines[header + 2].split()[3] == "yes" and lines[header + 3].split()[3] == "yes"
    assert lines[header + 4].split()[:1] == ["all"]
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["task"]["name"] == "reach" and saved["episodes"] == 2
    frames = iio.imread(video)
    assert frames.ndim == 4 and frames.shape[0] > 2 and frames.shape[-1] == 3


def test_random_policy_runs(tmp_path, capsys):
    assert main(["rollout", "task=push_cube", "policy=random", "episodes=1", "task.max_steps=5",
                 f"run_dir={tmp_path}", "logging.progress_bar=false"]) == 0
    assert " 5 " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ("episdoes=3", "'episdoes'"),
        ("episodes=many", "'episodes'"),
        ("episodes=0", "'episodes'"),
        ("task=fly", "'fly'"),
        ("task.reward=shaped", "'task.reward'"),
        ("robot.workspace.low=[1,0,0]", "'robot.workspace'"),
        ("cameras.front.crop=[1,2]", "'cameras.front.crop'"),
        ("policy.name=clever", "'policy.name'"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(override, names, tmp_path, capsys):
    code = main(["rollout", override, f"run_dir={tmp_path}", "logging.progress_bar=false"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and names in err and "Traceback" not in err


def test_load_config_defaults():
    cfg = load_config()
    assert cfg.task.name == "pick_cube" and cfg.robot.backend == "sim" and set(cfg.cameras) == {"front", "wrist"}
    with pytest.raises(ConfigError):
        load_config(["seed=x"])


def test_record_then_data_info_check_video(tmp_path, capsys):
    store = tmp_path / "demos.zarr"
    args = ["task=reach", "episodes=2", f"run_dir={tmp_path / 'run'}", "logging.progress_bar=false"]
    assert main(["rollout", "policy=expert", f"record={store}", *args]) == 0
    assert main(["rollout", "policy=random", "task.max_steps=4", f"record={store}", *args]) == 0  # appends
    capsys.readouterr()

    assert main(["data", "info", str(store)]) == 0
    info = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in info.splitlines() if line.split()}
    assert rows["demo"][1:4] == ["2", rows["demo"][2], "100%"]
    assert rows["eval"][1:3] == ["2", "8"]
    assert rows["all"][1] == "4"

    assert main(["data", "check", str(store)]) == 0
    assert "no damage found" in capsys.readouterr().out

    video = tmp_path / "ep.mp4"
    assert main(["data", "video", str(store), "episode=1", f"out={video}"]) == 0
    assert iio.imread(video).shape[0] >= 2

    assert main(["data", "video", str(store), "episode=9"]) == 2
    assert "episodes 0..3" in capsys.readouterr().err


def test_data_check_finds_a_corrupt_chunk(tmp_path, capsys):
    store = tmp_path / "s.zarr"
    main(["rollout", "task=reach", "episodes=1", f"record={store}", f"run_dir={tmp_path / 'run'}",
          "logging.progress_bar=false"])
    chunk = next(p for p in sorted((store / "obs" / "front").rglob("*")) if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(b"\x00garbage" + chunk.read_bytes()[9:])
    capsys.readouterr()
    assert main(["data", "check", str(store)]) == 1
    out = capsys.readouterr().out
    assert "damaged" in out and "front" in out


def test_data_on_a_path_that_is_not_a_store(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path)]) == 2
    assert "not an EpisodeStore" in capsys.readouterr().err


@pytest.mark.parametrize(("override", "new"), [("critic.name=learned_progress", "reward_model.name"),
                                               ("+critic.path=x.pt", "reward_model.path"),
                                               ("agent.actor_lr=1e-3", "agent.policy_lr"),
                                               ("agent.actor_update_every=3", "agent.policy_update_every")])
def test_a_renamed_config_key_names_its_new_name(override, new):
    with pytest.raises(ConfigError, match=rf"was renamed to '{new}'; write {new}=") as e:
        load_config([override], name="train")
    assert "\n" not in str(e.value)


def test_a_renamed_config_section_in_a_config_file_is_refused(tmp_path, monkeypatch):
    import shutil

    from robot_rl.config import config_dir

    tree = tmp_path / "config"
    shutil.copytree(config_dir(), tree)
    (tree / "train.yaml").write_text((tree / "train.yaml").read_text().replace("reward_model:", "critic:", 1))
    monkeypatch.setenv("ROBOT_RL_CONFIG_DIR", str(tree))
    with pytest.raises(ConfigError, match=r"'critic' was renamed to 'reward_model'; .* in a config file"):
        load_config([], name="train")


def test_the_renamed_critic_command_names_its_new_name(capsys):
    with pytest.raises(SystemExit) as e:
        main(["critic", "train", "data=x"])
    assert str(e.value) == "robot-rl: the 'critic' command was renamed: robot-rl reward-model train data=x"

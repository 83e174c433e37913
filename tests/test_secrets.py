"""No secret leaves the machine through the run folder: config.yaml, wandb's files and the
logs hold ``<redacted>`` where the run token, the console's key or a TLS key path stood."""

from __future__ import annotations

import sys

import pytest
import yaml
from omegaconf import OmegaConf

from robot_rl.cli import main
from robot_rl.secrets import REDACTED, is_secret, redact

RUN_TOKEN = "RUN-TOKEN-c2VjcmV0LXJ1bi10b2tlbg"
CONSOLE_KEY = "CONSOLE-KEY-Y29uc29sZS1rZXktb2YtdGhpcw"
TLS_KEY = "/keys/TLS-PRIVATE-KEY-bGVhcm5lci1rZXk.pem"
SECRETS = (RUN_TOKEN, CONSOLE_KEY, TLS_KEY)

TINY = [
    "task=reach", "cameras=sim64", "cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]",
    "cameras.wrist.resolution=[32,32]", "cameras.wrist.size=[32,32]", "task.max_steps=20", "train.processes=1",
    "train.env_steps=40", "train.random_steps=20", "train.eval_every=40", "train.eval_episodes=1",
    "learner.warmup_transitions=20", "learner.batch_size=8", "learner.publish_every=10",
    "learner.checkpoint_every=20", "agent.hidden=[16,16]", "agent.encoder_features=8", "logging.progress_bar=false",
    "train.threads=1",
]


def leaks(run_dir) -> dict[str, list[str]]:
    """Every file under ``run_dir`` whose bytes hold one of SECRETS, with the secrets it holds."""
    found = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        held = [s for s in SECRETS if s.encode() in data]
        if held:
            found[str(path.relative_to(run_dir))] = held
    return found


def test_redact_blanks_every_secret_that_is_set_at_any_depth():
    cfg = {
        "learner": {"token": "t0k", "address": "gpu:50051", "tls": {"cert": "c.pem", "key": "k.pem", "ca": None}},
        "console": {"token": None, "host": "0.0.0.0", "port": 8080},
        "reward_model": {"api_key_env": "VLM_KEY", "base_url": "https://x/v1"},
        "db": {"Password": "hunter2", "user": "me", "nested": [{"client_secret": "s"}, {"name": "ok"}]},
        "wandb_apikey": "", "private_key_path": "/k", "credentials": {"user": "u", "pass": "p"}, "tokens": {},
        "seed": 3, "lists": [1, 2],
    }
    original = yaml.safe_dump(cfg)
    out = redact(cfg)
    assert yaml.safe_dump(cfg) == original  # the input is left as it was
    assert out["learner"] == {"token": REDACTED, "address": "gpu:50051",
                              "tls": {"cert": "c.pem", "key": REDACTED, "ca": None}}
    assert out["console"]["token"] is None and out["console"]["host"] == "0.0.0.0"  # unset stays unset
    assert out["reward_model"] == {"api_key_env": REDACTED, "base_url": "https://x/v1"}
    assert out["db"] == {"Password": REDACTED, "user": "me", "nested": [{"client_secret": REDACTED}, {"name": "ok"}]}
    assert out["wandb_apikey"] == "" and out["tokens"] == {}
    assert out["private_key_path"] == REDACTED and out["credentials"] == REDACTED  # a whole section
    assert out["seed"] == 3 and out["lists"] == [1, 2]


def test_redact_takes_an_omegaconf_config_and_names_secrets_by_their_dotted_key():
    cfg = OmegaConf.create({"learner": {"token": "${oc.env:NO_SUCH_VAR,fallback-secret}", "tls": {"key": "k"}},
                            "a": {"key": "not a tls key"}})
    assert redact(cfg) == {"learner": {"token": REDACTED, "tls": {"key": REDACTED}}, "a": {"key": "not a tls key"}}
    assert is_secret("learner.token") and is_secret("learner.tls.key") and is_secret("console.token")
    assert is_secret("reward_model.api_key_env") and is_secret("x.API-KEY")
    assert not is_secret("learner.tls.cert") and not is_secret("learner.tls.ca") and not is_secret("a.key")
    assert not is_secret("learner.address") and not is_secret("")


def test_no_secret_given_on_the_command_line_reaches_a_file_of_the_run_folder(tmp_path, monkeypatch, capsys):
    """`robot-rl train` in one process with wandb offline and the console on: config.yaml,
    wandb's files (config, metadata, console capture) and everything else in the run folder."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    run_dir = tmp_path / "run"
    args = ["train", *TINY, "logging.wandb=offline", f"learner.token={RUN_TOKEN}", f"learner.tls.key={TLS_KEY}",
            "console.enabled=true", "console.port=0", f"console.token={CONSOLE_KEY}", f"run_dir={run_dir}"]
    monkeypatch.setattr(sys, "argv", ["robot-rl", *args])  # what wandb would record as the command line
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"?key={CONSOLE_KEY}" in err  # the operator is shown the console's URL, on the terminal only
    assert list((run_dir / "wandb").glob("offline-run-*"))
    assert leaks(run_dir) == {}
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["learner"]["token"] == REDACTED and saved["learner"]["tls"]["key"] == REDACTED
    assert saved["console"]["token"] == REDACTED and saved["task"]["name"] == "reach"


def test_rollout_writes_a_redacted_config(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["rollout", "task=reach", "episodes=1", "task.max_steps=3", "logging.progress_bar=false",
                 f"console.token={CONSOLE_KEY}", f"run_dir={run_dir}"]) == 0
    assert leaks(run_dir) == {}
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["console"]["token"] == REDACTED


@pytest.mark.slow
@pytest.mark.parametrize("given", ["environment", "command line"])
def test_no_token_reaches_a_file_of_a_two_process_run(tmp_path, given):
    """`robot-rl train` with a learner and an actor process (their logs, configs and wandb files
    in the run folder), the run token and the console key given either way."""
    import os
    import subprocess

    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    args = [a for a in TINY if a != "train.processes=1"] + ["logging.wandb=offline", "console.enabled=true",
                                                            "console.port=0", f"run_dir={run_dir}"]
    if given == "environment":
        env.update(ROBOT_RL_TOKEN=RUN_TOKEN, ROBOT_RL_CONSOLE_TOKEN=CONSOLE_KEY)
    else:
        args += [f"learner.token={RUN_TOKEN}", f"console.token={CONSOLE_KEY}"]
    done = subprocess.run([sys.executable, "-m", "robot_rl.cli", "train", *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"?key={CONSOLE_KEY}" in done.stderr  # shown to the operator on the terminal only
    assert (run_dir / "learner.log").exists() and list(run_dir.rglob("offline-run-*"))
    assert leaks(run_dir) == {}

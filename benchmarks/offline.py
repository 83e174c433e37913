"""Offline RL against imitation on mixed-quality data, then online fine-tuning against scratch.

    python benchmarks/offline.py [--demos 50] [--failed 50] [--half 50] [--offline-updates 2000]
                                 [--quick] [--json] [key=value ...]

1. ``data``: pick_cube episodes at 32×32 pixels in one EpisodeStore, under the task's sparse
   reward: ``--demos`` scripted-expert demos, ``--failed`` episodes of the expert closing the
   gripper on the table 5 cm beside the cube and ``--half`` episodes of the expert lifting the
   cube 4 cm (half way), letting go and going back to where it started (``NearMissExpert``'s
   ``beside`` and ``drop``): the mix a real robot's recordings hold, where imitating
   everything averages good actions with bad ones.
2. ``bc``: ``robot-rl offline offline.method=bc`` on all of it; ``bc_success``.
3. ``offline``: ``offline.method=calql offline.advantage_weight=10`` (Cal-QL critics, the
   policy's imitation weighted by the critics' advantage, AWAC-style: a real value term;
   the library's default weight is 0, plain imitation, until this beats it) on the same
   data; ``offline_success``. Target: at least ``bc_success`` + 0.1.
4. ``finetune``: online training from the offline checkpoint (``init=``), the same data as the
   demo buffer. The policy acts unchanged for ``learner.critic_warmup`` updates while the
   critics adapt; ``finetune_steps_to_90`` counts env steps from the first update that may
   move the policy to the first evaluation after it from which success stays ≥ 90 % to the
   end of the budget (so a policy lost later shows as not reaching it).
5. ``scratch``: the same online training, same data and seed, from fresh networks, until
   eval success first reaches 90 %: ``scratch_steps_to_90``.

Evaluations run the deterministic policy on held-out seeds: ``--offline-eval-episodes`` (50)
for bc and offline, where one evaluation's standard error is up to 0.07, ``--eval-episodes``
(20) for each online one. Online runs have actor and learner in
one process in lockstep (``train.processes=1``: results do not depend on CPU sharing), one
torch thread each; scratch runs in a second process beside the rest. Each finished phase's
result is saved in ``--out`` and reused when the benchmark runs again with the same settings,
so it resumes where it stopped. ``--quick``: tiny data and budgets, the code path only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
from published import report

from robot_rl.data import EpisodeStore, StoreSpec
from robot_rl.logs import setup_logging
from robot_rl.report import steps_to
from robot_rl.rewards.training import with_reward_model
from robot_rl.rl.actor import Actor
from robot_rl.rl.assembly import record_demos
from robot_rl.rl.offline import train_offline
from robot_rl.rl.rollout import FunctionPolicy
from robot_rl.rl.train import train_in_process
from robot_rl.robots import make_env
from robot_rl.schema import load_config
from robot_rl.sim.expert import NearMissExpert

PIXELS = [f"cameras.{c}.{k}=[32,32]" for c in ("front", "wrist") for k in ("resolution", "size")]
DEFAULT_OUT = Path(__file__).parent / "results" / "offline"
ADVANTAGE_WEIGHT = 10.0  # calql's value term in the policy (AWAC's λ); the library's default is 0 (off)
DEFAULT_RUN_DIR = Path(__file__).parent.parent / "build" / "benchmarks" / "offline"


def record_flawed(cfg, path: Path, kind: str, episodes: int) -> Path:
    """A store of ``episodes`` episodes of a flawed expert (``failed`` or ``half``)."""
    env = with_reward_model(make_env(cfg), cfg)
    store = EpisodeStore.append_or_create(path, StoreSpec.from_spaces(env.observation_space, env.action_space.shape[0]))
    try:
        expert = NearMissExpert(env, "beside" if kind == "failed" else "drop", seed=cfg.seed)
        seed = cfg.seed + (60_000 if kind == "failed" else 70_000)
        missing = episodes - len(store.episodes())
        Actor(env, FunctionPolicy(expert.act), store=store, seed=seed).run(max_episodes=max(missing, 0))
    finally:
        store.close()
        env.close()
    return path


def record_data(args: argparse.Namespace, common: list[str], root: Path) -> tuple[list[Path], dict]:
    """The mixed data's stores (expert, failed, half) and what each holds."""
    cfg = load_config(common, name="train")
    paths = [record_demos(cfg, root / "expert.zarr", args.demos), record_flawed(cfg, root / "failed.zarr", "failed",
             args.failed), record_flawed(cfg, root / "half.zarr", "half", args.half)]
    held = {}
    for path in paths:
        store = EpisodeStore.open(path, mode="r")
        found = store.episodes()
        held[path.stem] = {"episodes": len(found), "successes": sum(bool(e.success) for e in found),
                           "steps": sum(e.length for e in found)}
        store.close()
    return paths, held


def offline_phase(args: argparse.Namespace, common: list[str], root: Path, method: str) -> dict:
    run_dir = root / method
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = load_config([*common, f"offline.method={method}", f"offline.advantage_weight={ADVANTAGE_WEIGHT}",
                       f"offline.updates={args.offline_updates}",
                       f"offline.eval_every={args.offline_updates}",
                       f"offline.eval_episodes={args.offline_eval_episodes}", f"run_dir={run_dir}"], name="train")
    trained = train_offline(cfg, run_dir, progress_bar=False)
    return {"success": trained.final_success, "curve": trained.curve, "wall_s": round(trained.wall_s, 1),
            "checkpoint": str(run_dir)}


def online_phase(run_dir: Path, overrides: list[str]) -> dict:
    """One lockstep online run (top level, so a second process can run it)."""
    setup_logging()
    trained = train_in_process(load_config(overrides, name="train"), run_dir, progress_bar=False)
    return {"success": trained.final_success, "curve": trained.curve, "env_steps": trained.env_steps,
            "wall_s": round(trained.wall_s, 1)}


def steps_to_stay(curve: list[tuple[int, float]], level: float, after: int) -> int | None:
    """Env steps from ``after`` to the first evaluation past it from which every later one is
    at ``level`` or above."""
    held = None
    for steps, success in curve:
        if steps > after:
            held = (held or steps) if success >= level else None
    return held - after if held is not None else None


class Phases:
    """Each phase's result, saved in ``out`` and reused when its settings are unchanged."""

    def __init__(self, out: Path, settings: dict, keep: bool):
        self.out, self.settings, self.keep = out, settings, keep
        out.mkdir(parents=True, exist_ok=True)

    def saved(self, name: str) -> dict | None:
        path = self.out / f"{name}.json"
        if not self.keep or not path.exists():
            return None
        result = json.loads(path.read_text())
        return result if result.get("settings") == self.settings else None

    def get(self, name: str, make) -> dict:
        result = self.saved(name)
        if result is None:
            result = {**make(), "settings": self.settings}
            if self.keep:
                (self.out / f"{name}.json").write_text(json.dumps(result))
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demos", type=int, default=50)
    parser.add_argument("--failed", type=int, default=50, help="episodes closing the gripper beside the cube")
    parser.add_argument("--half", type=int, default=50, help="episodes of the expert letting the cube go half way up")
    parser.add_argument("--offline-updates", type=int, default=2000)
    parser.add_argument("--finetune-steps", type=int, default=2000)
    parser.add_argument("--env-steps", type=int, default=4000, help="online budget of the run from scratch")
    parser.add_argument("--eval-every", type=int, default=500, help="env steps between online evaluations")
    parser.add_argument("--eval-episodes", type=int, default=20, help="episodes of each online evaluation")
    parser.add_argument("--offline-eval-episodes", type=int, default=50, help="episodes of the bc and offline ones")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="finished phases' results (resume from here)")
    parser.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR), help="the data and runs")
    parser.add_argument("--quick", action="store_true", help="tiny data and budgets: the code path only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra config overrides (key=value) for every phase")
    args = parser.parse_args()
    if args.quick:
        args.demos, args.failed, args.half, args.offline_updates = 2, 1, 1, 20
        args.finetune_steps, args.env_steps, args.eval_every, args.eval_episodes = 60, 60, 30, 2
        args.offline_eval_episodes = 2
        args.overrides = ["learner.batch_size=16", "learner.critic_warmup=20", "task.max_steps=30", *args.overrides]
    setup_logging()
    root = Path(tempfile.mkdtemp(prefix="offline_bench_") if args.quick else args.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    common = ["task=pick_cube", "task.reward=sparse", *PIXELS, "logging.wandb=disabled", "train.threads=1",
              *args.overrides]
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "out", "run_dir", "quick")}
    phases = Phases(Path(args.out), settings, keep=not args.quick)
    stores, recorded = record_data(args, common, root)
    data = ",".join(str(p) for p in stores)

    online = [*common, f"data={data}", "train.demos=0", "train.processes=1", f"train.eval_every={args.eval_every}",
              f"train.eval_episodes={args.eval_episodes}"]
    scratch_future = None
    if phases.saved("scratch") is None:  # it needs nothing from the others: a second process runs it
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        scratch_future = pool.submit(online_phase, root / "scratch",
                                     [*online, f"train.env_steps={args.env_steps}", "train.stop_at=0.9"])
        pool.shutdown(wait=False)
    bc = phases.get("bc", lambda: offline_phase(args, [*common, f"data={data}"], root, "bc"))
    offline = phases.get("offline", lambda: offline_phase(args, [*common, f"data={data}"], root, "calql"))
    finetune = phases.get("finetune", lambda: online_phase(
        root / "finetune", [*online, f"init={offline['checkpoint']}", f"train.env_steps={args.finetune_steps}"]))
    scratch = phases.get("scratch", lambda: scratch_future.result())

    cfg = load_config(online, name="train")
    first_move = int(np.ceil(cfg.learner.critic_warmup / cfg.learner.utd_ratio))
    summary = {
        "task": "pick_cube", "reward": "sparse", "pixels": 32, "data": recorded, "method": "calql",
        "advantage_weight": ADVANTAGE_WEIGHT, "offline_updates": args.offline_updates,
        "bc_success": bc["success"], "offline_success": offline["success"],
        "offline_minus_bc": offline["success"] - bc["success"], "target_offline_minus_bc": 0.1,
        "finetune_success": finetune["success"], "finetune_policy_moves_at": first_move,
        "finetune_steps_to_90": steps_to_stay(finetune["curve"], 0.9, first_move),
        "scratch_success": scratch["success"], "scratch_steps_to_90": steps_to(scratch["curve"], 0.9),
        "finetune_curve": finetune["curve"], "scratch_curve": scratch["curve"], "eval_episodes": args.eval_episodes,
        "offline_eval_episodes": args.offline_eval_episodes,
        "wall_s": {name: phase["wall_s"] for name, phase in
                   (("bc", bc), ("offline", offline), ("finetune", finetune), ("scratch", scratch))},
    }
    summary["targets_met"] = summary["offline_minus_bc"] >= 0.1
    rows = [["bc", f"{args.offline_updates} updates", bc["success"], "", bc["wall_s"]],
            ["offline (calql)", f"{args.offline_updates} updates", offline["success"], "", offline["wall_s"]],
            ["finetune", f"{finetune['env_steps']} env steps", finetune["success"],
             summary["finetune_steps_to_90"], finetune["wall_s"]],
            ["scratch", f"{scratch['env_steps']} env steps", scratch["success"], summary["scratch_steps_to_90"],
             scratch["wall_s"]]]
    report("offline", f"offline: pick_cube, 32×32 pixels, sparse reward; data {recorded}; offline − bc = "
           f"{summary['offline_minus_bc']:+.2f} (target ≥ +0.1); fine-tuning counted from env step "
           f"{first_move}, when the policy may first move ({root})",
           ["phase", "training", "eval success", "steps to 90 %", "wall s"], rows, summary, args.json,
           publish=not args.quick)


if __name__ == "__main__":
    main()

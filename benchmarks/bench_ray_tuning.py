"""Figure: tuning trials per minute on a Ray cluster of 1, 2 and 4 worker nodes, and the
scaling efficiency, beside the local engine in the same run.

Target (issue 14): trials/min with 1, 2 and 4 Ray workers (processes on one machine) and
the scaling efficiency ``rate(k) / (k * rate(1))``.

The data: ``examples/fraud/generate.py`` (``--rows`` transactions, seed 0) beside the
unchanged ``examples/fraud/spec.yaml``, run as a user runs it, the whole
``forgeline train`` command in a fresh folder each time, with
``--set models=[lightgbm] tuning.trials=N tuning.cv_folds=K tuning.pruning=false
tuning.timeout_s=null`` (every trial does the same work: K fits) and ``tuning.n_jobs=1``
(one trial at a time, so every configuration runs the same trials: the script checks that
the CV score is the same everywhere). On Ray each fold is a task, so one trial keeps up to
K workers busy.

A cluster is a head node with no CPUs (it only schedules) and k worker nodes of one CPU
each, started with ``ray start --block`` (tests/raycluster.py). The rate is the trials
over the run's ``tuning_seconds`` (the search alone); the process's wall time is shown
too. The local reference is the same command with the local engine (one process). Before each
configuration the script waits (up to 90 s) until the CPUs are quiet, a new cluster's
worker processes started, and prints how busy they were: on 2 CPUs a neighbour's work
cuts the figures, so run it on a quiet machine. Worker nodes are started one after another
(several starting at once on 2 CPUs time out).

    .venv/bin/python benchmarks/bench_ray_tuning.py [--rows 20000] [--trials 8]
        [--folds 4] [--workers 1 2 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT, check_quiet, print_machine, scratch_dir, write_json

FORGELINE = Path(sys.executable).with_name("forgeline")


def _project(folder: Path, rows: int) -> Path:
    folder.mkdir()
    subprocess.run([sys.executable, str(ROOT / "examples" / "fraud" / "generate.py"),
                    "--rows", str(rows), "--out", str(folder / "transactions.parquet")],
                   check=True, capture_output=True)
    (folder / "spec.yaml").write_text((ROOT / "examples" / "fraud" / "spec.yaml").read_text())
    return folder


def _train(folder: Path, env: dict[str, str], trials: int, folds: int, *extra: str
           ) -> dict[str, Any]:
    args = ["--set", "models=[lightgbm]", "--set", f"tuning.trials={trials}",
            "--set", f"tuning.cv_folds={folds}", "--set", "tuning.pruning=false",
            "--set", "tuning.timeout_s=null", "--set", "tuning.n_jobs=1"]
    started = time.perf_counter()
    done = subprocess.run([str(FORGELINE), "train", "spec.yaml", "--json", *args, *extra],
                          cwd=folder, env={**env, "FORGELINE_HOME": str(folder / ".forgeline")},
                          capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"forgeline train failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    from forgeline.tracking.client import Client

    client = Client(f"sqlite:///{folder / '.forgeline' / 'forgeline.db'}")
    seconds = client.get_run(result["run_id"]).metrics["tuning_seconds"]
    client.store.close()
    return {"tuning_s": seconds, "wall_s": wall, "trials_per_min": trials / seconds * 60,
            "cv_score": result["cv_score"]}


def _settled(limit_s: float = 90.0) -> None:
    """Wait until the CPUs are quiet (a new cluster's nodes start their worker processes
    for a while after they join), then print how busy they were."""
    deadline = time.monotonic() + limit_s
    while check_quiet(2.0) > 0.15 and time.monotonic() < deadline:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.raycluster import RayCluster

    print_machine()
    results: dict[str, Any] = {"rows": args.rows, "trials": args.trials,
                               "folds": args.folds}
    with scratch_dir("ray-tuning") as scratch:
        data = _project(scratch / "data", args.rows)

        def fresh(name: str) -> Path:
            folder = scratch / name
            folder.mkdir()
            for f in ("transactions.parquet", "spec.yaml"):
                (folder / f).symlink_to(data / f)
            return folder

        _settled()
        local = _train(fresh("local"), dict(os.environ), args.trials, args.folds)
        results["local"] = local
        print(f"local engine: {local['trials_per_min']:.1f} trials/min "
              f"(tuning {local['tuning_s']:.1f} s, whole command {local['wall_s']:.1f} s)")
        for k in args.workers:
            with RayCluster(workers=k, cpus=1, head_cpus=0) as cluster:
                _settled()
                ray = _train(fresh(f"ray{k}"), cluster.env, args.trials, args.folds,
                             "--ray-address", cluster.address)
            results[f"ray{k}"] = ray
            print(f"ray, {k} worker(s): {ray['trials_per_min']:.1f} trials/min "
                  f"(tuning {ray['tuning_s']:.1f} s, whole command {ray['wall_s']:.1f} s)")
    scores = {name: r["cv_score"] for name, r in results.items() if isinstance(r, dict)}
    if len(set(scores.values())) != 1:
        raise SystemExit(f"the configurations did not run the same trials: {scores}")
    base = results.get("ray1", {}).get("trials_per_min")
    lines = ["| engine | trials/min | tuning s | whole command s | vs local | efficiency |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        k = int(name[3:]) if name.startswith("ray") else None
        eff = f"{r['trials_per_min'] / (k * base):.0%}" if k and base else "-"
        lines.append(f"| {'local (1 process)' if k is None else f'ray, {k} worker(s)'} | "
                     f"{r['trials_per_min']:.1f} | {r['tuning_s']:.1f} | {r['wall_s']:.1f} | "
                     f"{r['trials_per_min'] / local['trials_per_min']:.2f}x | {eff} |")
    table = "\n".join(lines)
    print(table)
    print(f"every configuration ran the same trials: cv ROC AUC {local['cv_score']:.6f}")
    write_json(args.json, "ray_tuning", results)


if __name__ == "__main__":
    main()

"""A tracked example experiment: a small hyperparameter sweep, tracked and registered.

Trains logistic regression by gradient descent (numpy) on synthetic card transactions,
one child run per setting, then registers the best model as ``demo-fraud@champion``.
Run it with ``make demo``; explore the result with ``forgeline runs list -e demo``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import forgeline as fl

console = Console()


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Amount, hour, foreign flag, new-merchant flag -> fraud (about 5%)."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.5, 1.0, n)
    hour = rng.integers(0, 24, n)
    foreign = rng.random(n) < 0.1
    new_merchant = rng.random(n) < 0.2
    night = (hour < 6).astype(float)
    logit = -4.2 + 0.9 * np.log(amount) / 3 + 1.6 * foreign + 1.1 * new_merchant + 1.3 * night
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    x = np.column_stack([np.log(amount), hour / 23, foreign, new_merchant, night])
    return (x - x.mean(0)) / x.std(0), y


def auc(y: np.ndarray, score: np.ndarray) -> float:
    order = np.argsort(score)
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    positives = y.sum()
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * (len(y) - positives)))


def train(run: fl.ActiveRun, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray,
          lr: float, l2: float, epochs: int) -> tuple[np.ndarray, float]:
    w = np.zeros(x.shape[1] + 1)
    xb, xvb = np.column_stack([np.ones(len(x)), x]), np.column_stack([np.ones(len(xv)), xv])
    for epoch in range(epochs):
        p = 1 / (1 + np.exp(-xb @ w))
        loss = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
        w -= lr * (xb.T @ (p - y) / len(y) + l2 * np.r_[0, w[1:]])
        run.log_metric("train_loss", loss, step=epoch)
        if epoch % 10 == 9:
            run.log_metric("val_auc", auc(yv, xvb @ w), step=epoch)
    return w, auc(yv, xvb @ w)


def main() -> None:
    x, y = make_data(20_000)
    xv, yv = make_data(5_000, seed=1)
    grid = [(lr, l2) for lr in (0.05, 0.2, 0.8) for l2 in (0.0, 0.01, 0.1)]
    best: tuple[float, str, np.ndarray] | None = None
    with fl.start_run(experiment="demo", name="sweep", tags={"purpose": "demo"}) as sweep:
        sweep.log_params({"model": "logistic_regression", "trials": len(grid), "epochs": 100})
        with Progress(console=console) as progress:
            task = progress.add_task("sweep", total=len(grid))
            for lr, l2 in grid:
                with fl.start_run(name=f"lr={lr} l2={l2}") as trial:
                    trial.log_params({"lr": lr, "l2": l2})
                    weights, score = train(trial, x, y, xv, yv, lr, l2, epochs=100)
                    with tempfile.TemporaryDirectory() as tmp:
                        path = Path(tmp) / "model"
                        path.mkdir()
                        (path / "weights.json").write_text(json.dumps(weights.tolist()))
                        trial.log_artifact(path, "model")
                if best is None or score > best[0]:
                    best = (score, trial.run_id, weights)
                progress.update(task, advance=1, description=f"best val_auc {best[0]:.4f}")
        assert best is not None
        sweep.log_metric("best_val_auc", best[0])

    client = fl.Client()
    version = client.register_model("demo-fraud", best[1], artifact_path="model",
                                    description="Best trial of the demo sweep")
    client.set_alias("demo-fraud", "champion", version.version)
    table = Table(title="Top trials: metrics.val_auc > 0.6, best first")
    for column in ("run", "lr", "l2", "val_auc", "final train_loss"):
        table.add_column(column)
    for run in client.search_runs("demo", "metrics.val_auc > 0.6",
                                  ["metrics.val_auc DESC"], max_results=5):
        table.add_row(run.name, run.params["lr"], run.params["l2"],
                      f"{run.metrics['val_auc']:.4f}", f"{run.metrics['train_loss']:.4f}")
    console.print(table)
    console.print(f"Registered [bold]demo-fraud/{version.version}[/] as "
                  f"[bold]demo-fraud@champion[/] (run {best[1][:8]}).")
    console.print("Explore: forgeline runs list -e demo | forgeline models show "
                  "demo-fraud@champion")


if __name__ == "__main__":
    main()

"""Figures: the PyTorch MLP on the fraud example beside LightGBM, and its int8 quantization
against float32 (issue 16).

Data: ``forgeline.examples.fraud.generate(--rows)``, split by time as the fraud spec
does (the newest 20% is the test split), with the spec's features (``txn_id`` and
``customer_id`` dropped, ``age_band`` kept out as the sensitive column). Both models are
Forgeline pipelines built by the zoo (``ModelPlan.pipeline``): the same preprocessing
rules, each family's default hyperparameters (LightGBM: 300 trees; the MLP: width 128,
depth 2, early stopping on 10% of the training rows, at most 50 epochs), one thread,
no tuning. Measured in one run:

- **MLP vs LightGBM**: test ROC AUC and fit time (the whole pipeline's ``fit``).
- **int8 vs float32** (``MLPClassifier.quantized()``: ONNX Runtime dynamic quantization,
  int8 weights): test ROC AUC and its change (target: within 0.005), batch inference on
  10,000 rows (the network alone, on the preprocessed matrix, best of ``--repeats``;
  target >= 1.5x faster) and through the whole pipeline, and the network's size (target
  3x smaller) and the model package's ``model.skops``. Each for the default network and
  a wider one (``--wide``, width x depth), since a small network spends its time outside
  the matrix products that int8 speeds up.
- With a CUDA GPU (``torch.cuda.is_available()``): the MLP's fit time on it beside CPU.

    .venv/bin/python benchmarks/bench_mlp.py [--rows 60000] [--wide 512x3] [--json out]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from sklearn.metrics import roc_auc_score

from _common import check_quiet, print_machine, scratch_dir, write_json
from forgeline.data.inference import infer_schema
from forgeline.data.profile import build_profile
from forgeline.entities import Task
from forgeline.examples.fraud import TARGET, generate
from forgeline.packaging import Signature, save_package
from forgeline.training.plan import ModelPlan

SCORE_TARGET, SPEED_TARGET, SIZE_TARGET = 0.005, 1.5, 3.0
BATCH = 10_000


def _split(rows: int, seed: int) -> tuple[Any, Any, ModelPlan]:
    frame = generate(rows, seed=seed).sort_values("ts", kind="stable")
    frame = frame.drop(columns=["txn_id", "customer_id", "age_band"])
    cut = int(len(frame) * 0.8)
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    schema = infer_schema(train, TARGET)
    features = tuple(c.name for c in schema.columns)
    plan = ModelPlan(Task.BINARY, schema, features, "roc_auc", 42, True, device="cpu")
    return train, test, plan


def _fit(plan: ModelPlan, model: str, params: dict[str, Any], train: Any) -> tuple[Any, float]:
    pipeline = plan.pipeline(model, params)
    start = time.perf_counter()
    pipeline.fit(train[list(plan.features)], train[TARGET])
    return pipeline, time.perf_counter() - start


def _auc(pipeline: Any, test: Any, features: tuple[str, ...]) -> float:
    return float(roc_auc_score(test[TARGET], pipeline.predict_proba(test[list(features)])[:, 1]))


def _best_time(call: Any, repeats: int) -> float:
    call()  # warm: the session is made on first use
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def _package_size(folder: Path, pipeline: Any, plan: ModelPlan, train: Any) -> int:
    frame = train[list(plan.features)]
    signature = Signature.from_frame(frame, plan.schema, "binary", list(pipeline.classes_))
    save_package(folder, pipeline, signature, metrics={}, card="",
                 profile=build_profile(train, plan.schema))
    return (folder / "model.skops").stat().st_size


def _quantization(name: str, pipeline: Any, plan: ModelPlan, train: Any, test: Any,
                  repeats: int, scratch: Path) -> dict[str, Any]:
    from forgeline.optimization.quantize import quantize_candidates

    (candidate,) = quantize_candidates(pipeline)
    int8 = candidate.model
    rows = test[list(plan.features)].sample(BATCH, replace=len(test) < BATCH, random_state=0)
    matrix = pipeline.steps[0][1].transform(rows)
    out: dict[str, Any] = {}
    for label, model in (("float32", pipeline), ("int8", int8)):
        net = model.steps[-1][1]
        out[label] = {
            "roc_auc": _auc(model, test, plan.features),
            "network_batch_s": _best_time(lambda n=net: n.predict_proba(matrix), repeats),
            "pipeline_batch_s": _best_time(lambda m=model: m.predict_proba(rows), repeats),
            "network_bytes": len(net.onnx_model_),
            "package_model_bytes": _package_size(scratch / f"{name}-{label}", model, plan,
                                                 train)}
    f32, i8 = out["float32"], out["int8"]
    out["score_delta"] = i8["roc_auc"] - f32["roc_auc"]
    out["network_speedup"] = f32["network_batch_s"] / i8["network_batch_s"]
    out["pipeline_speedup"] = f32["pipeline_batch_s"] / i8["pipeline_batch_s"]
    out["size_ratio"] = f32["network_bytes"] / i8["network_bytes"]
    print(f"\nint8 vs float32, {name} network ({candidate.detail}):")
    print(f"  ROC AUC          {f32['roc_auc']:.4f} -> {i8['roc_auc']:.4f} "
          f"(change {out['score_delta']:+.4f}; target within {SCORE_TARGET})")
    print(f"  {BATCH:,} rows, network   {f32['network_batch_s'] * 1e3:7.1f} ms -> "
          f"{i8['network_batch_s'] * 1e3:7.1f} ms ({out['network_speedup']:.2f}x; target >= "
          f"{SPEED_TARGET}x)")
    print(f"  {BATCH:,} rows, pipeline  {f32['pipeline_batch_s'] * 1e3:7.1f} ms -> "
          f"{i8['pipeline_batch_s'] * 1e3:7.1f} ms ({out['pipeline_speedup']:.2f}x)")
    print(f"  network size     {f32['network_bytes'] / 1024:7.0f} KiB -> "
          f"{i8['network_bytes'] / 1024:7.0f} KiB ({out['size_ratio']:.2f}x smaller; target "
          f">= {SIZE_TARGET}x); model.skops {f32['package_model_bytes'] / 1024:.0f} KiB -> "
          f"{i8['package_model_bytes'] / 1024:.0f} KiB")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--wide", default="512x3", help="the wider network, WIDTHxDEPTH")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    print_machine()
    check_quiet()
    train, test, plan = _split(args.rows, args.seed)
    print(f"fraud example: {len(train):,} training rows, {len(test):,} test rows (time "
          f"split), fraud rate {train[TARGET].mean():.2%}")
    results: dict[str, Any] = {"rows": args.rows}
    lgbm, lgbm_s = _fit(plan, "lightgbm", {}, train)
    mlp, mlp_s = _fit(plan, "mlp", {}, train)
    net = mlp.steps[-1][1]
    results["lightgbm"] = {"roc_auc": _auc(lgbm, test, plan.features), "fit_s": lgbm_s}
    results["mlp"] = {"roc_auc": _auc(mlp, test, plan.features), "fit_s": mlp_s,
                      "epochs": net.n_epochs_, "best_epoch": net.best_epoch_}
    print("\nMLP vs LightGBM (default hyperparameters, one thread, no tuning):")
    print(f"  LightGBM  ROC AUC {results['lightgbm']['roc_auc']:.4f}   fit {lgbm_s:6.1f} s")
    print(f"  MLP       ROC AUC {results['mlp']['roc_auc']:.4f}   fit {mlp_s:6.1f} s "
          f"({net.n_epochs_} epochs, best {net.best_epoch_}; {mlp_s / lgbm_s:.1f}x "
          "LightGBM's time)")
    width, depth = (int(v) for v in args.wide.lower().split("x"))
    wide, wide_s = _fit(plan, "mlp", {"width": width, "depth": depth}, train)
    results["mlp_wide"] = {"roc_auc": _auc(wide, test, plan.features), "fit_s": wide_s,
                           "width": width, "depth": depth}
    print(f"  MLP {width}x{depth} ROC AUC {results['mlp_wide']['roc_auc']:.4f}   fit "
          f"{wide_s:6.1f} s")
    with scratch_dir("mlp") as scratch:
        results["int8_default"] = _quantization("default 128x2", mlp, plan, train, test,
                                                args.repeats, scratch)
        results["int8_wide"] = _quantization(f"wide {width}x{depth}", wide, plan, train,
                                             test, args.repeats, scratch)
    import torch

    if torch.cuda.is_available():
        gpu_plan = ModelPlan(plan.task, plan.schema, plan.features, plan.metric, plan.seed,
                             plan.imbalanced, device="cuda")
        gpu, gpu_s = _fit(gpu_plan, "mlp", {}, train)
        results["gpu"] = {"fit_s": gpu_s, "cpu_fit_s": mlp_s,
                          "roc_auc": _auc(gpu, test, plan.features),
                          "device": torch.cuda.get_device_name(0)}
        print(f"\nGPU ({results['gpu']['device']}): MLP fit {gpu_s:.1f} s vs CPU {mlp_s:.1f} s "
              f"({mlp_s / gpu_s:.1f}x), ROC AUC {results['gpu']['roc_auc']:.4f}")
    else:
        print("\nno CUDA GPU: the GPU training time is not measured here")
    write_json(args.json, "mlp", results)


if __name__ == "__main__":
    main()

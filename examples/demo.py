"""The end-to-end demo (``make demo``): generate card transactions, train, register, report.

Writes the data to ``.forgeline/demo/transactions.parquet``, trains with
``examples/fraud/spec.yaml`` (tuned, leakage-checked, evaluated on the newest 20% of
the period) and registers the model as ``fraud@champion`` when it passes the gate.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console

import forgeline as fl

sys.path.insert(0, str(Path(__file__).parent / "fraud"))
from generate import generate

console = Console(soft_wrap=True)


def main() -> None:
    started = time.monotonic()
    data = Path(".forgeline/demo/transactions.parquet")
    data.parent.mkdir(parents=True, exist_ok=True)
    with console.status("Generating 50,000 card transactions"):
        frame = generate(50_000, seed=7)
        frame.to_parquet(data, index=False)
    console.print(f"Generated {len(frame):,} transactions ({frame.is_fraud.mean():.2%} fraud) "
                  f"into {data}")
    spec = Path(__file__).parent / "fraud" / "spec.yaml"
    result = fl.train(spec, [f"data.path={data.absolute()}"])
    version = result.model_version
    console.print(f"\n[bold]{result.model}[/] test {result.metric} "
                  f"[bold]{result.score:.4f}[/] (cross-validated {result.cv_score:.4f})")
    if version is not None:
        console.print(f"Registered [bold]{version.ref}[/] as "
                      + ", ".join(f"[bold]{version.name}@{a}[/]" for a in version.aliases))
    else:
        console.print(f"Not registered: {result.registered_reason}")
    console.print(f"Report: [bold]{result.report}[/]")
    console.print(f"Done in {time.monotonic() - started:.0f} s. Explore: "
                  "forgeline runs list -e fraud; forgeline models show fraud@champion")


if __name__ == "__main__":
    main()

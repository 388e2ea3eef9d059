"""Write synthetic card transactions (``forgeline.examples.fraud``) to CSV or Parquet.

    python examples/fraud/generate.py --rows 50000 --out transactions.parquet
    python examples/fraud/generate.py --days 150 --drift 1 --drift-start 0.84 \\
        --drift-end 0.9 --pattern-shift 2 --out drifted.parquet

The generator lives in the package (``from forgeline.examples.fraud import generate``);
this script keeps the old import (``from generate import generate``) working.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from forgeline.examples.fraud import generate

__all__ = ["generate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--drift", type=float, default=0.0,
                        help="how far the world changes (0 to 1)")
    parser.add_argument("--drift-start", type=float, default=0.0,
                        help="where in the period the drift begins (0 to 1)")
    parser.add_argument("--drift-end", type=float, default=1.0,
                        help="where in the period it is complete (0 to 1)")
    parser.add_argument("--pattern-shift", type=float, default=0.0,
                        help="new mobile account-takeover fraud at full drift, as a "
                             "multiple of the fraud rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("transactions.parquet"))
    args = parser.parse_args()
    frame = generate(args.rows, days=args.days, drift=args.drift, drift_start=args.drift_start,
                     drift_end=args.drift_end, pattern_shift=args.pattern_shift, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".csv":
        frame.to_csv(args.out, index=False)
    else:
        frame.to_parquet(args.out, index=False)
    print(f"wrote {len(frame)} transactions ({frame.is_fraud.mean():.2%} fraud) to {args.out}")


if __name__ == "__main__":
    main()

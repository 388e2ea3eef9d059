"""Synthetic card transactions with learnable fraud and a configurable drift over time.

Customers have a home country, an age band, a typical spend and an account age; merchants
have a category and a country. Fraud (about 1-2%) is more likely for large amounts
against the customer's habit, at night, abroad, card-not-present, in risky categories,
after a burst of transactions, and on young accounts.

``drift`` (0 to 1) changes the world along the time axis, as production data does:
prices rise, online and mobile take over, and fraud moves to the mobile channel. The
model trained on the early period then sees data it was not trained for.

    python examples/fraud/generate.py --rows 50000 --out transactions.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = ["grocery", "restaurant", "gas", "pharmacy", "clothing", "electronics",
              "travel", "online_gaming", "jewelry", "digital_goods"]
RISK = {"electronics": 0.8, "travel": 0.6, "online_gaming": 1.2, "jewelry": 1.1,
        "digital_goods": 1.0}
COUNTRIES = ["US", "GB", "DE", "FR", "ES", "NL", "BR", "IN", "NG", "RU"]
AGE_BANDS = ["18-25", "26-35", "36-50", "51-65", "65+"]
CHANNELS = ["pos", "online", "mobile"]


def _calibrated(logit: np.ndarray, rate: float) -> np.ndarray:
    """Probabilities sigmoid(logit + b), with b chosen so that their mean is ``rate``."""
    low, high = -40.0, 40.0
    for _ in range(60):
        mid = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(logit + mid)))) > rate:
            high = mid
        else:
            low = mid
    return 1 / (1 + np.exp(-(logit + low)))


def generate(rows: int = 50_000, *, customers: int = 4_000, merchants: int = 600,
             start: str = "2025-01-01", days: int = 120, drift: float = 0.0,
             fraud_rate: float = 0.015, seed: int = 0) -> pd.DataFrame:
    """A frame of ``rows`` transactions sorted by time, with the target ``is_fraud``."""
    rng = np.random.default_rng(seed)
    # customers
    home = rng.choice(COUNTRIES[:6], customers, p=[0.45, 0.15, 0.12, 0.1, 0.1, 0.08])
    age_band = rng.choice(AGE_BANDS, customers, p=[0.15, 0.28, 0.3, 0.19, 0.08])
    typical = rng.lognormal(3.4, 0.6, customers)
    account_days = rng.gamma(2.0, 400, customers).astype(int) + 1
    # merchants
    m_category = rng.choice(CATEGORIES, merchants,
                            p=[0.2, 0.18, 0.12, 0.08, 0.12, 0.07, 0.06, 0.05, 0.04, 0.08])

    t = np.sort(rng.random(rows))  # position in time, 0..1
    ts = pd.Timestamp(start) + pd.to_timedelta(t * days * 86400, unit="s")
    cust = rng.integers(0, customers, rows)
    merch = rng.integers(0, merchants, rows)
    hour = np.where(rng.random(rows) < 0.12, rng.integers(0, 6, rows),
                    rng.integers(6, 24, rows))
    ts = ts.floor("h") + pd.to_timedelta(hour - ts.hour, unit="h")
    p_online = 0.25 + 0.3 * drift * t
    p_mobile = 0.15 + 0.3 * drift * t
    u = rng.random(rows)
    channel = np.where(u < p_online, "online", np.where(u < p_online + p_mobile, "mobile",
                                                        "pos"))
    card_present = (channel == "pos") & (rng.random(rows) < 0.97)
    abroad = rng.random(rows) < 0.07 + 0.05 * drift * t
    country = np.where(abroad, rng.choice(COUNTRIES, rows), home[cust])
    country = np.where(abroad & (country == home[cust]), "NG", country)
    inflation = 1 + 0.35 * drift * t
    amount = np.round(typical[cust] * rng.lognormal(0, 0.7, rows) * inflation, 2)
    velocity = rng.poisson(1.5, rows)
    distance = np.where(abroad, rng.gamma(3, 900, rows), rng.gamma(1.2, 12, rows))
    category = m_category[merch]

    risk = np.vectorize(RISK.get)(category, 0.0).astype(float)
    logit = (1.3 * np.log(amount / (typical[cust] * inflation))
             + 1.4 * (hour < 6) + 1.6 * abroad + 1.1 * (~card_present)
             + risk + 0.35 * np.minimum(velocity, 8) + 1.2 * (account_days[cust] < 60)
             + 2.2 * drift * t * (channel == "mobile"))
    is_fraud = rng.random(rows) < _calibrated(logit, fraud_rate)
    # fraudsters hit again: a burst right before a fraudulent transaction
    velocity = np.where(is_fraud, velocity + rng.poisson(2.5, rows), velocity)

    frame = pd.DataFrame({
        "txn_id": [f"t{i:08d}" for i in range(rows)],
        "ts": ts,
        "customer_id": [f"c{c:05d}" for c in cust],
        "merchant_id": [f"m{m:04d}" for m in merch],
        "merchant_category": category,
        "amount": amount,
        "hour": hour,
        "channel": channel,
        "card_present": card_present,
        "country": country,
        "distance_from_home_km": np.round(distance, 1),
        "txns_last_24h": velocity,
        "account_age_days": account_days[cust],
        "age_band": age_band[cust],
        "is_fraud": is_fraud.astype(int),
    })
    missing = rng.random(rows) < 0.02  # a little real-world mess
    frame.loc[missing, "distance_from_home_km"] = np.nan
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--drift", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("transactions.parquet"))
    args = parser.parse_args()
    frame = generate(args.rows, days=args.days, drift=args.drift, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".csv":
        frame.to_csv(args.out, index=False)
    else:
        frame.to_parquet(args.out, index=False)
    print(f"wrote {len(frame)} transactions ({frame.is_fraud.mean():.2%} fraud) to {args.out}")


if __name__ == "__main__":
    main()

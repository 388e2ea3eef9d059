"""Synthetic card transactions with learnable fraud and a configurable drift over time.

Customers have a home country, an age band, a typical spend and an account age; merchants
have a category and a country. Fraud (about 1-2%) is more likely for large amounts
against the customer's habit, at night, abroad, card-not-present, in risky categories,
after a burst of transactions, and on young accounts.

``drift`` (0 to 1) changes the world along the time axis, as production data does:
prices rise, online and mobile take over, and fraud moves to the mobile channel. The
model trained on the early period then sees data it was not trained for. By default the
drift grows over the whole period; ``drift_start`` and ``drift_end`` (fractions of the
period) make it begin later and reach its full strength sooner.

``pattern_shift`` changes the fraud itself, not only the data: as the drift grows, a new
kind of fraud appears (account takeovers on the mobile app) that shows none of the old
signs: established accounts, daytime, at home, no burst of transactions. At full drift
it adds ``pattern_shift`` times ``fraud_rate`` of fraud. A model trained before it ranks
these cases like ordinary purchases; one retrained on labelled recent data learns them.

With the defaults (and any ``drift`` alone) the output is the same as before these
options existed: they draw their random numbers after every other draw.

    python examples/fraud/generate.py --rows 50000 --out transactions.parquet
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forgeline.errors import InvalidInput

__all__ = ["DAYS", "DRIFT_FROM", "START", "TARGET", "TRAIN_DAYS", "fraud_spec", "generate", "story"]

TARGET = "is_fraud"
CATEGORIES = ["grocery", "restaurant", "gas", "pharmacy", "clothing", "electronics",
              "travel", "online_gaming", "jewelry", "digital_goods"]
RISK = {"electronics": 0.8, "travel": 0.6, "online_gaming": 1.2, "jewelry": 1.1,
        "digital_goods": 1.0}
COUNTRIES = ["US", "GB", "DE", "FR", "ES", "NL", "BR", "IN", "NG", "RU"]
AGE_BANDS = ["18-25", "26-35", "36-50", "51-65", "65+"]
CHANNELS = ["pos", "online", "mobile"]
TAKEOVER_CATEGORIES = ["digital_goods", "electronics"]  # resold easily
# the demo's timeline, in days: train on the first TRAIN_DAYS, serve the rest; the drift
# begins on day DRIFT_FROM and is complete on day DRIFT_FULL
DAYS, TRAIN_DAYS, DRIFT_FROM, DRIFT_FULL = 150, 120, 126, 134
START = "2025-01-01"


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
             start: str = START, days: int = 120, drift: float = 0.0,
             drift_start: float = 0.0, drift_end: float = 1.0, pattern_shift: float = 0.0,
             fraud_rate: float = 0.015, seed: int = 0) -> pd.DataFrame:
    """A frame of ``rows`` transactions sorted by time, with the target ``is_fraud``.

    Args:
        rows: transactions over the whole period.
        customers: distinct customers.
        merchants: distinct merchants.
        start: the first day.
        days: the length of the period.
        drift: how far the world has changed at the end of the drift (0 to 1).
        drift_start: where in the period (0 to 1) the drift begins.
        drift_end: where in the period it reaches ``drift``; constant afterwards.
        pattern_shift: the new kind of fraud at full drift, as a multiple of
            ``fraud_rate`` (0: none).
        fraud_rate: the share of fraud before the pattern shift.
        seed: the random seed; the same arguments give the same frame.

    Raises:
        InvalidInput: an argument out of its range.
    """
    if not 0 <= drift <= 1 or not 0 <= drift_start < drift_end <= 1 or pattern_shift < 0:
        raise InvalidInput("Invalid drift: need 0 <= drift <= 1, 0 <= drift_start < "
                           "drift_end <= 1 and pattern_shift >= 0.")
    if rows < 1 or customers < 1 or merchants < 1 or days <= 0 or not 0 < fraud_rate < 1:
        raise InvalidInput("Invalid sizes: rows, customers, merchants and days must be "
                           "positive and fraud_rate between 0 and 1.")
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
    # how far the world has changed at each transaction (drift * t by default)
    shift = drift * np.clip((t - drift_start) / (drift_end - drift_start), 0.0, 1.0)
    ts = pd.Timestamp(start) + pd.to_timedelta(t * days * 86400, unit="s")
    cust = rng.integers(0, customers, rows)
    merch = rng.integers(0, merchants, rows)
    hour = np.where(rng.random(rows) < 0.12, rng.integers(0, 6, rows),
                    rng.integers(6, 24, rows))
    ts = ts.floor("h") + pd.to_timedelta(hour - ts.hour, unit="h")
    p_online = 0.25 + 0.3 * shift
    p_mobile = 0.15 + 0.3 * shift
    u = rng.random(rows)
    channel = np.where(u < p_online, "online", np.where(u < p_online + p_mobile, "mobile",
                                                        "pos"))
    card_present = (channel == "pos") & (rng.random(rows) < 0.97)
    abroad = rng.random(rows) < 0.07 + 0.05 * shift
    country = np.where(abroad, rng.choice(COUNTRIES, rows), home[cust])
    country = np.where(abroad & (country == home[cust]), "NG", country)
    inflation = 1 + 0.35 * shift
    amount = np.round(typical[cust] * rng.lognormal(0, 0.7, rows) * inflation, 2)
    velocity = rng.poisson(1.5, rows)
    distance = np.where(abroad, rng.gamma(3, 900, rows), rng.gamma(1.2, 12, rows))
    category = m_category[merch]

    risk = np.vectorize(RISK.get)(category, 0.0).astype(float)
    logit = (1.3 * np.log(amount / (typical[cust] * inflation))
             + 1.4 * (hour < 6) + 1.6 * abroad + 1.1 * (~card_present)
             + risk + 0.35 * np.minimum(velocity, 8) + 1.2 * (account_days[cust] < 60)
             + 2.2 * shift * (channel == "mobile"))
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
        TARGET: is_fraud.astype(int),
    })
    missing = rng.random(rows) < 0.02  # a little real-world mess
    frame.loc[missing, "distance_from_home_km"] = np.nan
    if pattern_shift > 0:  # drawn last: the frame above stays what it was without it
        takeover = (3.0 * (channel == "mobile") + 1.2 * np.isin(category, TAKEOVER_CATEGORIES)
                    + 1.0 * (account_days[cust] >= 365) - 2.0 * abroad - 1.5 * (hour < 6)
                    - 0.5 * np.minimum(velocity, 8))
        p_takeover = shift * pattern_shift * _calibrated(takeover, fraud_rate)
        frame.loc[rng.random(rows) < p_takeover, TARGET] = 1
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def fraud_spec(path: str, *, trials: int = 12) -> dict[str, object]:
    """The training spec of the fraud model for the data at ``path``.

    The same as ``examples/fraud/spec.yaml`` (a test keeps them equal), with its
    ``retrain:`` section: a cycle starts when more than 30% of the features drift in the
    last 2,000 predictions, and the challenger must beat the champion by 0.01 ROC AUC on
    the newest 1,000 labelled rows. Its ``fairness:`` limit: the share of transactions
    flagged may differ by at most 5 points between age bands (equalized odds is left
    unlimited: with a few frauds per band in a test period, TPR gaps are mostly noise, as
    their bootstrap intervals in the report show); a challenger that breaks it while the
    champion meets it is not promoted.
    """
    return {
        "name": "fraud",
        "data": {"path": str(path), "target": TARGET, "time_column": "ts",
                 "drop": ["txn_id", "customer_id"], "sensitive": ["age_band"]},
        "split": {"strategy": "time", "test_size": 0.2},
        "models": ["logistic_regression", "lightgbm"],
        "tuning": {"trials": trials, "cv_folds": 3, "timeout_s": 120},
        "metric": "roc_auc",
        "register": {"min_score": 0.75, "alias": "champion"},
        "fairness": {"limits": ["demographic_parity_difference <= 0.05"]},
        "retrain": {"triggers": ["dataset_drift > 0.3"], "monitor_rows": 2000,
                    "gate": {"margin": 0.01, "recent_rows": 1000, "min_labelled": 200}},
    }


def story(train_rows: int, requests: int, *, fraud_rate: float = 0.015,
          pattern_shift: float = 2.0, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo's world: ``train_rows`` transactions of the first :data:`TRAIN_DAYS` days
    to train on and ``requests`` of the days after to serve, both in time order, from one
    world (the same customers and merchants) whose drift begins on day :data:`DRIFT_FROM`.
    """
    # rows for the whole period, so that both parts can be sampled to their size
    total = int(max(train_rows * DAYS / TRAIN_DAYS,
                    requests * DAYS / (DAYS - TRAIN_DAYS)) * 1.1)
    world = generate(total, customers=max(200, total // 12), days=DAYS, drift=1.0,
                     drift_start=DRIFT_FROM / DAYS, drift_end=DRIFT_FULL / DAYS,
                     pattern_shift=pattern_shift, fraud_rate=fraud_rate, seed=seed)
    cut = pd.Timestamp(START) + pd.Timedelta(days=TRAIN_DAYS)
    early, late = world[world["ts"] < cut], world[world["ts"] >= cut]
    training = early.sample(min(train_rows, len(early)), random_state=seed).sort_index()
    traffic = late.sample(min(requests, len(late)), random_state=seed).sort_index()
    return training.reset_index(drop=True), traffic.reset_index(drop=True)

"""Drift statistics computed from binned distributions, vectorised over windows.

Every function takes the reference counts (1-D, one entry per bin) and the current counts
(``(..., bins)``: one row per time window, or a single row) and returns one value per row.
Nothing here sees a raw value: monitoring compares the profile's bins with production data
re-binned on the same edges, so the training data is never needed.

Approximations, stated once:

- **Kolmogorov-Smirnov**: the statistic is the largest gap between the two empirical CDFs
  *at the reference bin edges* (exact there, since both CDFs are counts of values below an
  edge). It never exceeds the exact statistic and falls short of it by at most the mass of
  one bin (about 5% with the profile's 20 quantile bins), so the test is slightly
  conservative. The p-value is the asymptotic two-sample one, scipy's
  ``ks_2samp(method="asymp")``: Kolmogorov's distribution for ``round(n*m / (n+m))`` (the
  effective sample size of two samples of sizes ``n`` and ``m``); above an effective size
  of 2,000 its limit, ``kstwobign`` at ``D * sqrt(en)`` (within 2% of it there, and the
  p-value only decides drift for samples of at most 1,000 rows by default).
- **Wasserstein-1** is the area between the two CDFs, divided by the reference standard
  deviation (at least 0.001), as Evidently does. When the mean of the values in each bin
  is known for both sides (the profile's ``bin_means`` extra, and sums of the current
  values per bin), each bin's mass is put at its mean and the distance between the two
  discrete distributions is exact: on normal, log-normal, exponential and integer data it
  is within 0.002 of scipy's on the raw values. Without bin means, both CDFs are taken as
  linear inside a bin, the outer bins spanning the reference minimum and maximum; that
  overstates shifts of long-tailed columns (its tail bins are wide), so it is a fallback.
- **PSI** floors empty bins at 0.0001 (Evidently's constant); **Jensen-Shannon distance**
  uses the natural logarithm (scipy's default, so it lies in [0, 0.8326]).
- **Chi-square** is the test of homogeneity of the 2 x K table (reference row, current row)
  without Yates' correction; for two categories it equals the two-proportion z-test.

The two survival functions the p-values need, Kolmogorov's (scipy's ``kolmogorov``, i.e.
``kstwobign.sf``) and the chi-square's for a whole number of degrees of freedom (scipy's
``chdtrc``, i.e. ``chi2.sf``), are their classic closed forms here, in numpy: importing
scipy costs a monitoring command about half a second before any work, more than the whole
report on 200,000 rows. The tests check both against scipy to 1e-12. scipy.stats is
imported only for the exact small-sample Kolmogorov distribution (``kstwo``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PSI_FLOOR", "chi2_sf", "chisquare_pvalue", "jensenshannon", "kolmogorov_sf", "ks",
           "psi", "shares", "wasserstein"]

PSI_FLOOR = 1e-4
KS_EXACT_N = 2_000  # above this effective size, the limiting distribution (fast, vectorised)


def _rows(current: np.ndarray) -> np.ndarray:
    return np.atleast_2d(np.asarray(current, dtype="float64"))


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts as shares of their row total (a row of zeros stays zeros)."""
    counts = np.asarray(counts, dtype="float64")
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def _empty(current: np.ndarray) -> np.ndarray:
    return current.sum(axis=-1) == 0


def psi(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Population stability index: sum of (c - r) * ln(c / r) over bins."""
    cur = _rows(current)
    r, c = shares(reference), shares(cur)
    r = np.where(r == 0, PSI_FLOOR, r)
    c = np.where(c == 0, PSI_FLOOR, c)
    out = ((c - r) * np.log(c / r)).sum(axis=-1)
    return np.where(_empty(cur), np.nan, out)


def jensenshannon(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (the square root of the divergence), natural log."""
    cur = _rows(current)
    p, q = np.broadcast_arrays(shares(reference), shares(cur))
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, m, out=np.ones_like(a), where=a > 0)
        return (a * np.log(ratio)).sum(axis=-1)

    out = np.sqrt(np.maximum((kl(p) + kl(q)) / 2, 0.0))
    return np.where(_empty(cur), np.nan, out)


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample Kolmogorov-Smirnov statistic at the bin edges, and its p-value."""
    cur = _rows(current)
    ref = np.asarray(reference, dtype="float64")
    n, m = ref.sum(), cur.sum(axis=-1)
    f_ref = np.cumsum(shares(ref))[:-1]
    f_cur = np.cumsum(shares(cur), axis=-1)[..., :-1]
    d = np.abs(f_cur - f_ref).max(axis=-1) if f_ref.size else np.zeros(len(cur))
    with np.errstate(divide="ignore", invalid="ignore"):
        effective = np.round(n * m / (n + m))
    p = np.full(len(cur), np.nan)
    ok = (effective >= 1) & (n > 0)
    exact = ok & (effective <= KS_EXACT_N)
    if exact.any():  # scipy.stats (a second to import) only when a sample is this small
        from scipy.stats import kstwo

        p[exact] = kstwo.sf(d[exact], effective[exact])
    limit = ok & ~exact
    if limit.any():  # Kolmogorov's limiting distribution (scipy's kstwobign.sf)
        p[limit] = kolmogorov_sf(d[limit] * np.sqrt(effective[limit]))
    return np.where(ok, d, np.nan), np.clip(p, 0.0, 1.0)


def _wasserstein_means(reference: np.ndarray, cur: np.ndarray, ref_means: np.ndarray,
                       cur_sums: np.ndarray) -> np.ndarray:
    """Each bin's mass at its mean on both sides; W1 of the two discrete distributions."""
    rows = len(cur)
    ref_points = np.broadcast_to(np.nan_to_num(ref_means), cur.shape)
    cur_points = np.divide(cur_sums, cur, out=np.zeros_like(cur), where=cur > 0)
    points = np.concatenate([ref_points, cur_points], axis=1)
    weights = np.concatenate([np.broadcast_to(shares(reference), cur.shape), -shares(cur)],
                             axis=1)  # a point without mass only splits an interval
    order = np.argsort(points, axis=1, kind="stable")
    points = np.take_along_axis(points, order, axis=1)
    cdf = np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1)[:, :-1]
    return (np.abs(cdf) * np.diff(points, axis=1)).sum(axis=1) if rows else np.zeros(0)


def _wasserstein_linear(reference: np.ndarray, cur: np.ndarray, inner: np.ndarray,
                        low: float, high: float) -> np.ndarray:
    """Both CDFs linear inside each bin; the outer bins end at the reference min and max."""
    knots = np.concatenate([[min(low, inner[0])], inner, [max(high, inner[-1])]])
    f_ref = np.concatenate([[0.0], np.cumsum(shares(reference))])
    f_cur = np.concatenate([np.zeros((len(cur), 1)), np.cumsum(shares(cur), axis=-1)], axis=1)
    f_ref[-1] = 1.0
    f_cur[:, -1] = 1.0
    d = f_cur - f_ref  # (rows, knots)
    a, b = np.abs(d[:, :-1]), np.abs(d[:, 1:])
    crossing = d[:, :-1] * d[:, 1:] < 0
    total = a + b
    area = np.where(crossing,
                    np.divide(a * a + b * b, 2 * total, out=np.zeros_like(a), where=total > 0),
                    total / 2) * np.diff(knots)
    return area.sum(axis=-1)


def wasserstein(reference: np.ndarray, current: np.ndarray, edges: np.ndarray,
                low: float, high: float, std: float | None,
                ref_means: np.ndarray | None = None, cur_sums: np.ndarray | None = None
                ) -> np.ndarray:
    """Wasserstein-1 distance between the binned distributions, over the reference std.

    Args:
        reference: reference counts, one per bin.
        current: current counts, ``(..., bins)``.
        edges: the profile's edges, ``[-inf, e1, ..., ek, inf]``.
        low: the reference minimum (the outer edge of the first bin).
        high: the reference maximum (the outer edge of the last bin).
        std: the reference standard deviation.
        ref_means: the mean of the reference values in each bin (None: unknown).
        cur_sums: the sum of the current values in each bin, like ``current``.
    """
    cur = _rows(current)
    if ref_means is not None and cur_sums is not None:
        out = _wasserstein_means(np.asarray(reference, dtype="float64"), cur,
                                 np.asarray(ref_means, dtype="float64"), _rows(cur_sums))
    else:
        out = _wasserstein_linear(reference, cur, np.asarray(edges, dtype="float64")[1:-1],
                                  low, high)
    out = out / max(std or 0.0, 1e-3)
    return np.where(_empty(cur), np.nan, out)


def chisquare_pvalue(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """p-value of the chi-square test that both rows come from one distribution."""
    cur = _rows(current)
    ref = np.broadcast_to(np.asarray(reference, dtype="float64"), cur.shape)
    col = ref + cur
    used = col > 0
    n_ref, n_cur = ref.sum(axis=-1, keepdims=True), cur.sum(axis=-1, keepdims=True)
    total = n_ref + n_cur
    with np.errstate(divide="ignore", invalid="ignore"):
        e_ref, e_cur = col * n_ref / total, col * n_cur / total
        terms = np.where(used, (ref - e_ref) ** 2 / e_ref + (cur - e_cur) ** 2 / e_cur, 0.0)
    stat = np.nan_to_num(terms).sum(axis=-1)
    dof = used.sum(axis=-1) - 1
    p = np.where(dof > 0, chi2_sf(stat, np.maximum(dof, 1)), 1.0)
    empty = (n_cur[:, 0] == 0) | (n_ref[:, 0] == 0)
    return np.where(empty, np.nan, p)


def kolmogorov_sf(x: np.ndarray) -> np.ndarray:
    """P(K > x) for Kolmogorov's distribution (the limit of ``sqrt(n) * D_n``).

    ``2 * sum((-1)**(j-1) * exp(-2 j**2 x**2))`` from x = 1 on, where six terms reach
    double precision, and 1 minus Jacobi's form of the CDF,
    ``sqrt(2 pi) / x * sum(exp(-(2j-1)**2 pi**2 / (8 x**2)))``, below it.
    """
    x = np.asarray(x, dtype="float64")
    out = np.ones_like(x)
    big = x >= 1.0
    if big.any():
        j = np.arange(1, 7)[:, None]
        terms = np.exp(-2.0 * j**2 * x[big] ** 2) * np.where(j % 2, 1.0, -1.0)
        out[big] = 2.0 * terms.sum(axis=0)
    small = (x > 0) & ~big
    if small.any():
        j = np.arange(1, 7)[:, None]
        xs = x[small]
        cdf = math.sqrt(2 * math.pi) / xs * np.exp(
            -((2 * j - 1) ** 2) * math.pi**2 / (8 * xs**2)).sum(axis=0)
        out[small] = 1.0 - cdf
    return np.clip(np.where(np.isnan(x), np.nan, out), 0.0, 1.0)


def chi2_sf(x: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """P(X > x) for a chi-square variable with ``dof`` (whole, >= 1) degrees of freedom.

    The closed forms for whole ``k``, with ``h = x / 2``: even ``k``,
    ``exp(-h) * sum(h**i / i!, i < k/2)``; odd ``k``, ``erfc(sqrt(h)) +
    exp(-h) * sum(h**(i - 1/2) / Gamma(i + 1/2), 1 <= i <= (k-1)/2)``; each term taken
    through its logarithm so that large ``x`` neither overflows nor underflows early.
    """
    x, dof = np.broadcast_arrays(np.asarray(x, dtype="float64"),
                                 np.asarray(dof, dtype="int64"))
    out = np.full(x.shape, np.nan)
    for k in np.unique(dof):
        where = dof == k
        h = np.maximum(x[where], 0.0) / 2
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0), 0 * -inf: set below
            log_h = np.log(h)
            if k % 2 == 0:
                i = np.arange(k // 2)[:, None]
                logs = i * log_h - np.array([math.lgamma(v + 1) for v in range(k // 2)]
                                            )[:, None]
                logs[0] = 0.0  # h**0 / 0! is 1, also at h = 0
                q = np.exp(logs - h).sum(axis=0)
            else:
                q = np.array([math.erfc(math.sqrt(v)) for v in h])
                if k > 1:
                    i = np.arange(1, (k - 1) // 2 + 1)[:, None]
                    gammas = np.array([math.lgamma(v + 0.5)
                                       for v in range(1, (k - 1) // 2 + 1)])
                    q = q + np.exp((i - 0.5) * log_h - gammas[:, None] - h).sum(axis=0)
        out[where] = np.where(np.isnan(x[where]), np.nan, np.clip(q, 0.0, 1.0))
    return out

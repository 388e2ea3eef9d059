"""Binned drift statistics against scipy on the raw values, and their invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon as scipy_js

from forgeline.data.profile import bin_counts, bin_means, column_profile
from forgeline.data.schema import ColumnKind
from forgeline.monitoring import stats as st

RNG = np.random.default_rng(42)
CASES = {
    "normal, same": (RNG.normal(0, 1, 20_000), RNG.normal(0, 1, 50_000)),
    "normal, +0.5 std": (RNG.normal(0, 1, 20_000), RNG.normal(0.5, 1, 50_000)),
    "normal, 1.5x scale": (RNG.normal(0, 1, 20_000), RNG.normal(0, 1.5, 50_000)),
    "log-normal, shifted": (RNG.lognormal(0, 1, 20_000), RNG.lognormal(0.3, 1, 50_000)),
    "exponential, 1.2x": (RNG.exponential(1, 20_000), RNG.exponential(1.2, 50_000)),
    "integers, +1": (RNG.integers(0, 10, 20_000) * 1.0, RNG.integers(1, 11, 50_000) * 1.0),
}


def _binned(ref: np.ndarray, cur: np.ndarray) -> tuple[dict, np.ndarray]:
    profile = column_profile(pd.Series(ref), ColumnKind.NUMERIC)
    return profile, bin_counts(cur, profile["bins"]["edges"])


@pytest.mark.parametrize("case", CASES)
def test_ks_at_the_edges_is_a_tight_lower_bound(case: str) -> None:
    ref, cur = CASES[case]
    profile, counts = _binned(ref, cur)
    d, p = st.ks(np.array(profile["bins"]["counts"]), counts)
    exact = sps.ks_2samp(ref, cur, method="asymp")
    assert d[0] <= exact.statistic + 1e-12
    assert exact.statistic - d[0] < 0.05  # at most one bin's mass (5%) below
    assert (p[0] < 0.05) == (exact.pvalue < 0.05)


@pytest.mark.parametrize("case", CASES)
def test_wasserstein_with_bin_means_matches_scipy(case: str) -> None:
    ref, cur = CASES[case]
    profile, counts = _binned(ref, cur)
    edges = profile["bins"]["edges"]
    sums = np.bincount(np.searchsorted(np.array(edges[1:-1]), cur, side="right"), weights=cur,
                       minlength=len(counts))
    w = st.wasserstein(np.array(profile["bins"]["counts"]), counts, np.array(edges),
                       profile["min"], profile["max"], profile["std"],
                       np.array(bin_means(ref, edges), dtype=float), sums)
    exact = sps.wasserstein_distance(ref, cur) / np.std(ref)
    assert w[0] == pytest.approx(exact, abs=0.005)


def test_wasserstein_without_bin_means_is_a_linear_approximation() -> None:
    ref, cur = CASES["normal, +0.5 std"]
    profile, counts = _binned(ref, cur)
    w = st.wasserstein(np.array(profile["bins"]["counts"]), counts,
                       np.array(profile["bins"]["edges"]), profile["min"], profile["max"],
                       profile["std"])
    assert 0.45 < w[0] < 0.65  # exact 0.5; the wide outer bins overstate it a little


def test_chisquare_equals_scipy_contingency_without_correction() -> None:
    ref, cur = np.array([500, 300, 200, 0]), np.array([40, 35, 20, 5])
    p = st.chisquare_pvalue(ref, cur)[0]  # a category new in production: reference count 0
    expected = sps.chi2_contingency(np.array([ref, cur]), correction=False)
    assert p == pytest.approx(expected.pvalue)
    two = st.chisquare_pvalue(np.array([700, 300]), np.array([60, 40]))[0]
    z = sps.chi2_contingency(np.array([[700, 300], [60, 40]]), correction=False)
    assert two == pytest.approx(z.pvalue)  # two categories: the two-proportion z-test


def test_jensenshannon_and_psi_match_their_definitions() -> None:
    ref, cur = np.array([50.0, 30, 20]), np.array([20.0, 30, 50])
    assert st.jensenshannon(ref, cur)[0] == pytest.approx(scipy_js(ref / 100, cur / 100))
    r, c = ref / 100, cur / 100
    assert st.psi(ref, cur)[0] == pytest.approx(np.sum((c - r) * np.log(c / r)))
    # an empty bin is floored at 0.0001, as Evidently does
    assert np.isfinite(st.psi(np.array([10.0, 0]), np.array([5.0, 5]))[0])


def test_rows_are_windows_and_an_empty_window_has_no_score() -> None:
    ref = np.array([10.0, 20, 30])
    cur = np.array([[10.0, 20, 30], [0, 0, 0], [30, 20, 10]])
    assert st.psi(ref, cur)[0] == pytest.approx(0.0)
    assert np.isnan(st.psi(ref, cur)[1]) and np.isnan(st.jensenshannon(ref, cur)[1])
    assert np.isnan(st.ks(ref, cur)[1][1]) and np.isnan(st.chisquare_pvalue(ref, cur)[1])
    assert st.psi(ref, cur)[2] > 0.1


@settings(max_examples=40, deadline=None)
@given(hs.lists(hs.integers(0, 1000), min_size=2, max_size=12).flatmap(
    lambda ref: hs.tuples(hs.just(ref), hs.lists(hs.integers(0, 1000), min_size=len(ref),
                                                 max_size=len(ref)))))
def test_invariants(pair: tuple[list[int], list[int]]) -> None:
    ref, cur = (np.array(x, dtype=float) for x in pair)
    if ref.sum() == 0 or cur.sum() == 0:
        return
    js = st.jensenshannon(ref, cur)[0]
    assert 0 <= js <= np.sqrt(np.log(2)) + 1e-12
    assert st.psi(ref, cur)[0] >= -1e-12
    d, p = st.ks(ref, cur)
    assert 0 <= d[0] <= 1 and 0 <= p[0] <= 1
    assert 0 <= st.chisquare_pvalue(ref, cur)[0] <= 1
    same = st.jensenshannon(ref, ref)[0], st.ks(ref, ref)[0][0], st.psi(ref, ref)[0]
    assert same == pytest.approx((0, 0, 0), abs=1e-7)


def test_kolmogorov_survival_matches_scipy() -> None:
    from scipy import special

    x = np.concatenate([[0.0, 1e-9, 0.01, 0.2, 0.5, 0.999, 1.0, 1.0001, 1.5, 3.0, 8.0, 30.0],
                        np.linspace(0, 6, 2001)])
    assert np.abs(st.kolmogorov_sf(x) - special.kolmogorov(x)).max() < 1e-12
    assert np.isnan(st.kolmogorov_sf(np.array([np.nan]))).all()


@pytest.mark.parametrize("dof", [*range(1, 12), 24, 25, 50, 51, 99, 100])
def test_chi2_survival_matches_scipy_for_whole_degrees_of_freedom(dof: int) -> None:
    from scipy import special

    x = np.concatenate([[0.0, 1e-12, 0.5, dof / 2, dof, 5.0 * dof, 1e3, 1e5],
                        np.linspace(0, 4 * dof + 20, 400)])
    ours = st.chi2_sf(x, np.full(len(x), dof))
    assert np.abs(ours - special.chdtrc(dof, x)).max() < 1e-12
    assert ours[0] == 1.0 and ours[-1] < 1e-3
    assert np.isnan(st.chi2_sf(np.array([np.nan]), np.array([dof]))).all()


def test_a_monitoring_run_does_not_import_scipy(tmp_path) -> None:
    """Its p-values need no scipy at 1,000+ rows per window: half a second saved on start."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from forgeline.monitoring import stats as st; "
            "st.ks(np.array([5000., 5000]), np.array([[2000., 3000]])); "
            "st.chisquare_pvalue(np.array([5., 5]), np.array([[20., 30]])); "
            "print('scipy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=tmp_path)
    assert done.stdout.strip() == "False"

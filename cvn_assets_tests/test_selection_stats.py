"""The proxy-vs-economy statistics, checked on numbers: against scipy, against hand computations, against
naive re-implementations written out with plain loops, and against the DSR paper's numerical example."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from scipy import stats

from cvn_assets.core.selection_stats import (
    PairedTest,
    default_n_groups,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    paired_comparison,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sortino_distribution_share,
    spearman,
    spearman_bootstrap,
)


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


# spearman


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_scipy_on_inputs_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=40).astype(float)
    y = x + rng.integers(-3, 4, size=40)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_drops_pairs_with_a_nan() -> None:
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 3.0])
    y = np.array([2.0, 1.0, 3.0, np.nan, 5.0, 5.0])
    expected = stats.spearmanr([1, 2, 5, 3], [2, 1, 5, 5]).statistic
    assert spearman(x, y) == pytest.approx(expected, abs=1e-12)


def test_spearman_undefined_and_extreme_cases() -> None:
    assert spearman([1, 2], [3, 4]) is None
    assert spearman([1, 2, np.nan, 4], [1, 2, 3, np.nan]) is None
    assert spearman([1, 1, 1, 1], [1, 2, 3, 4]) is None
    assert spearman([1, 2, 3, 10], [0, 5, 6, 7]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 10], [7, 6, 5, 0]) == pytest.approx(-1.0)


# spearman_bootstrap


def _naive_bootstrap(x, y, cells, n_boot, level, seed):
    """The cluster bootstrap written out: the same draws, each resample's pairs concatenated, scipy's rho."""
    keep = [i for i in range(len(x)) if not (math.isnan(x[i]) or math.isnan(y[i]))]
    labels = []
    for i in keep:
        if cells[i] not in labels:
            labels.append(cells[i])
    members = {c: [i for i in keep if cells[i] == c] for c in labels}
    draws = np.random.default_rng(seed).integers(0, len(labels), size=(n_boot, len(labels)))
    rhos = []
    for row in draws:
        idx = [i for d in row for i in members[labels[d]]]
        xs, ys = [x[i] for i in idx], [y[i] for i in idx]
        if len(idx) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
            continue
        rhos.append(stats.spearmanr(xs, ys).statistic)
    return np.quantile(rhos, [(1 - level) / 2, (1 + level) / 2])


def test_spearman_bootstrap_matches_a_naive_cluster_bootstrap() -> None:
    rng = np.random.default_rng(7)
    cells = [
        (crypto, fold) for crypto in ("BTC", "ETH", "SOL") for fold in range(4) for _ in range(1 + fold % 3)
    ]
    x = rng.integers(0, 5, size=len(cells)).astype(float)  # ties within and across cells
    y = np.round(x + rng.normal(0, 2, size=len(cells)))
    x[3] = np.nan
    rho, lo, hi = spearman_bootstrap(x, y, cells, n_boot=300, level=0.9, seed=11)
    naive_lo, naive_hi = _naive_bootstrap(list(x), list(y), cells, 300, 0.9, 11)
    assert rho == pytest.approx(spearman(x, y), abs=1e-15)
    assert lo == pytest.approx(naive_lo, abs=1e-12)
    assert hi == pytest.approx(naive_hi, abs=1e-12)
    assert lo < rho < hi


def test_spearman_bootstrap_skips_undefined_resamples() -> None:
    # Two cells of one pair each and one of three: many resamples are constant or too small.
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 3.0, 2.0, 5.0, 4.0]
    cells = ["a", "b", "c", "c", "c"]
    _, lo, hi = spearman_bootstrap(x, y, cells, n_boot=200, seed=3)
    naive_lo, naive_hi = _naive_bootstrap(x, y, cells, 200, 0.95, 3)
    assert (lo, hi) == pytest.approx((naive_lo, naive_hi), abs=1e-12)


def test_spearman_bootstrap_is_deterministic_given_the_seed() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=60), rng.normal(size=60)
    cells = np.repeat(np.arange(12), 5)
    first = spearman_bootstrap(x, y, cells, n_boot=200, seed=5)
    assert spearman_bootstrap(x, y, cells, n_boot=200, seed=5) == first
    assert spearman_bootstrap(x, y, cells, n_boot=200, seed=6) != first


def test_spearman_bootstrap_without_two_cells_has_no_interval() -> None:
    x, y = [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]
    assert spearman_bootstrap(x, y, ["a"] * 4) == (pytest.approx(0.8), None, None)
    # The only pair of cell "b" is missing, so a single cell is left.
    assert spearman_bootstrap([*x, np.nan], [*y, 1.0], ["a"] * 4 + ["b"])[1:] == (None, None)
    with pytest.raises(ValueError):
        spearman_bootstrap(x, y, ["a", "b"])


def test_spearman_bootstrap_is_fast() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=400), rng.normal(size=400)
    cells = np.repeat(np.arange(80), 5)
    start = time.perf_counter()
    spearman_bootstrap(x, y, cells, n_boot=1000)
    assert time.perf_counter() - start < 1.0


# paired_comparison


def test_paired_comparison_counts_by_hand() -> None:
    # Pairs (the NaN one dropped): differences 1, 0, 2, -1, 1 -> 5 pairs, 3 better, 4 not tied.
    result = paired_comparison([1, 2, 3, 4, 5, np.nan], [0, 2, 1, 5, 4, 1])
    assert result.n == 5
    assert result.share_better == pytest.approx(3 / 5)
    # Two-sided exact binomial, 3 of 4: 2 * P(X >= 3) = 2 * (4 + 1) / 16.
    assert result.sign_p == pytest.approx(10 / 16)
    assert result.wilcoxon_p == pytest.approx(stats.wilcoxon([1, 2, -1, 1]).pvalue)


def test_paired_comparison_p_values_against_exact_hand_computations() -> None:
    # All 5 differences positive and distinct: the sign test gives 2 * 0.5^5; the signed-rank statistic is
    # at its extreme, reached by 1 of the 2^5 sign patterns, so its two-sided p-value is also 2 / 32.
    five = paired_comparison([1.1, 2.2, 3.3, 4.4, 5.5], [0, 0, 0, 0, 0])
    assert five.sign_p == pytest.approx(2 / 32)
    assert five.wilcoxon_p == pytest.approx(2 / 32)
    # 5 of 6 positive, the negative one the smallest: sign p = 2 * (C(6,5) + C(6,6)) / 64; rank sum of the
    # negatives = 1, reached by the sign patterns {} and {1}: p = 2 * 2 / 64.
    six = paired_comparison([-0.5, 2, 3, 4, 5, 6], [0] * 6)
    hand_sign = 2 * (math.comb(6, 5) + math.comb(6, 6)) / 2**6
    assert six.sign_p == pytest.approx(hand_sign)
    assert six.wilcoxon_p == pytest.approx(4 / 64)
    assert six.share_better == pytest.approx(5 / 6)


def test_paired_comparison_degenerate_cases() -> None:
    assert paired_comparison([np.nan], [1.0]) == PairedTest(
        n=0, share_better=None, sign_p=None, wilcoxon_p=None
    )
    assert paired_comparison([1.0, 2.0], [1.0, 2.0]) == PairedTest(
        n=2, share_better=0.0, sign_p=None, wilcoxon_p=None
    )


# probability_of_backtest_overfitting


def _naive_pbo(performance, n_groups, selection=None):
    """CSCV written out: explicit groups, itertools.combinations, nanmean per half, ranks by counting."""
    perf = np.asarray(performance, dtype=float)
    chooser = perf if selection is None else np.asarray(selection, dtype=float)
    n_rows, n_variants = perf.shape
    groups, start = [], 0
    for g in range(n_groups):
        size = n_rows // n_groups + (1 if g < n_rows % n_groups else 0)
        groups.append(list(range(start, start + size)))
        start += size
    logits = []
    for is_groups in itertools.combinations(range(n_groups), n_groups // 2):
        is_rows = [r for g in is_groups for r in groups[g]]
        oos_rows = [r for g in range(n_groups) if g not in is_groups for r in groups[g]]
        best, best_value = None, None
        for j in range(n_variants):
            column = [chooser[r, j] for r in is_rows if not math.isnan(chooser[r, j])]
            if column and (best_value is None or np.mean(column) > best_value):
                best, best_value = j, np.mean(column)
        oos = {}
        for j in range(n_variants):
            column = [perf[r, j] for r in oos_rows if not math.isnan(perf[r, j])]
            if column:
                oos[j] = np.mean(column)
        if best is None or best not in oos or len(oos) < 2:
            continue
        below = sum(1 for v in oos.values() if v < oos[best])
        equal = sum(1 for v in oos.values() if v == oos[best])
        omega = (below + (equal + 1) / 2) / (len(oos) + 1)
        logits.append(math.log(omega / (1 - omega)))
    return logits


SMALL = np.array(
    [
        [3.0, 1.0, 2.0, 0.0],
        [1.0, 2.0, 2.0, 4.0],
        [0.0, 3.0, 1.0, 1.0],
        [2.0, 2.0, 0.0, 3.0],
        [4.0, 0.0, 3.0, 1.0],
        [1.0, 1.0, 1.0, 2.0],
    ]
)


@pytest.mark.parametrize("n_groups", [2, 4, 6])
def test_pbo_matches_a_hand_enumeration(n_groups: int) -> None:
    result = probability_of_backtest_overfitting(SMALL, n_groups=n_groups)
    naive = _naive_pbo(SMALL, n_groups)
    assert result.n_groups == n_groups
    assert result.n_combinations == len(naive) == math.comb(n_groups, n_groups // 2)
    np.testing.assert_allclose(result.logits, naive, rtol=0, atol=1e-12)
    assert result.pbo == pytest.approx(np.mean(np.asarray(naive) <= 0))


def test_pbo_with_a_selection_metric_and_missing_values_matches_the_enumeration() -> None:
    rng = np.random.default_rng(4)
    performance = rng.integers(-3, 4, size=(9, 5)).astype(float)
    selection = rng.integers(0, 3, size=(9, 5)).astype(float)
    performance[2, 1] = performance[5, 3] = np.nan
    selection[0, 4] = selection[7, 0] = np.nan
    selection[:4, 2] = np.nan  # variant 2 is never chosen when only those rows are in-sample
    result = probability_of_backtest_overfitting(performance, n_groups=6, selection=selection)
    naive = _naive_pbo(performance, 6, selection)
    assert result.n_combinations == len(naive)
    np.testing.assert_allclose(result.logits, naive, rtol=0, atol=1e-12)
    assert result.pbo == pytest.approx(np.mean(np.asarray(naive) <= 0))


def test_pbo_on_two_by_two_by_hand() -> None:
    # Each half's best is the other half's worst: rank 1 of 2, omega = 1/3, logit ln(1/2), twice.
    result = probability_of_backtest_overfitting(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert result.pbo == 1.0
    np.testing.assert_allclose(result.logits, [math.log(0.5)] * 2)


def test_pbo_is_zero_when_one_variant_dominates_every_row() -> None:
    rng = np.random.default_rng(0)
    performance = rng.normal(size=(24, 10))
    performance[:, 6] = performance.max(axis=1) + 0.1
    result = probability_of_backtest_overfitting(performance)
    assert result.n_groups == 16 and result.n_combinations == math.comb(16, 8)
    assert result.pbo == 0.0


def test_pbo_of_pure_noise_is_near_one_half() -> None:
    # One matrix's PBO spreads widely (the combinations share rows), so the test averages 20 seeds.
    values = [
        probability_of_backtest_overfitting(np.random.default_rng(s).normal(size=(32, 50)), n_groups=10).pbo
        for s in range(20)
    ]
    assert np.mean(values) == pytest.approx(0.5, abs=0.12)


def test_pbo_is_one_when_performance_is_anti_persistent() -> None:
    # Every column sums to 0 and the halves are equal: the in-sample best is the out-of-sample worst.
    performance = np.random.default_rng(2).normal(size=(32, 20))
    performance -= performance.mean(axis=0)
    assert probability_of_backtest_overfitting(performance).pbo == 1.0


def test_pbo_groups_and_degenerate_inputs() -> None:
    assert [default_n_groups(t) for t in (2, 3, 5, 16, 17, 40)] == [2, 2, 4, 16, 16, 16]
    assert probability_of_backtest_overfitting(np.ones((1, 5))).pbo is None
    assert probability_of_backtest_overfitting(np.ones((8, 1))).pbo is None
    assert probability_of_backtest_overfitting(np.full((4, 3), np.nan)).pbo is None
    for bad in (3, 0, 6):
        with pytest.raises(ValueError):
            probability_of_backtest_overfitting(np.ones((4, 3)), n_groups=bad)
    with pytest.raises(ValueError):
        probability_of_backtest_overfitting(np.ones((4, 3)), selection=np.ones((4, 2)))


# Deflated Sharpe ratio


def test_dsr_building_blocks_reproduce_the_papers_example() -> None:
    # Bailey and López de Prado (2014), section 3: one year = 250 days, T = 1250, annualized SR 2.5,
    # skew -3, kurtosis 10, N = 100 trials with annualized variance of their Sharpe ratios 0.5: DSR ~ 0.9004.
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 * math.sqrt(250) == pytest.approx(1.7894, abs=1e-3)  # the annualized expected maximum
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=1e-3)


def test_expected_max_sharpe_scales_with_the_spread_and_is_zero_for_one_trial() -> None:
    assert expected_max_sharpe(1, 0.3) == 0.0
    assert expected_max_sharpe(50, 0.04) == pytest.approx(2 * expected_max_sharpe(50, 0.01))
    assert expected_max_sharpe(10, 1.0) < expected_max_sharpe(100, 1.0) < expected_max_sharpe(1000, 1.0)
    with pytest.raises(ValueError):
        expected_max_sharpe(0, 1.0)


def test_psr_by_hand_on_a_tiny_series() -> None:
    r = [0.01, -0.02, 0.03, 0.0, 0.02]
    n = len(r)
    mean = sum(r) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in r) / (n - 1))
    m2, m3, m4 = (sum((v - mean) ** k for v in r) / n for k in (2, 3, 4))
    sr, skew, kurt = mean / std, m3 / m2**1.5, m4 / m2**2
    hand = _phi(sr * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert probabilistic_sharpe_ratio(sr, 0.0, n, skew, kurt) == pytest.approx(hand, abs=1e-12)
    # With one trial there is nothing to deflate: the DSR is that PSR against 0.
    assert deflated_sharpe_ratio(r, n_trials=1, sharpe_variance=0.5) == pytest.approx(hand, abs=1e-12)
    sr0 = expected_max_sharpe(20, 0.01)
    deflated = _phi((sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert deflated_sharpe_ratio([*r, np.nan], n_trials=20, sharpe_variance=0.01) == pytest.approx(deflated)
    assert deflated < hand


def test_dsr_undefined_cases() -> None:
    assert deflated_sharpe_ratio([0.01, 0.02], n_trials=5, sharpe_variance=0.1) is None
    assert deflated_sharpe_ratio([0.01, 0.01, 0.01, 0.01], n_trials=5, sharpe_variance=0.1) is None
    assert probabilistic_sharpe_ratio(1.0, 0.0, 1, 0.0, 3.0) is None
    assert probabilistic_sharpe_ratio(2.0, 0.0, 10, 1.0, 1.0) is None  # 1 - 2 + 0 <= 0


# sortino_distribution_share


def test_sortino_distribution_share_by_hand() -> None:
    distribution = [0.0, 1.0, 2.0, np.nan, -1.0]
    assert sortino_distribution_share(1.0, distribution) == pytest.approx(2 / 4)  # 0 and -1; the tie is not
    assert sortino_distribution_share(5.0, distribution) == 1.0
    assert sortino_distribution_share(-2.0, distribution) == 0.0
    assert sortino_distribution_share(None, distribution) is None
    assert sortino_distribution_share(np.nan, distribution) is None
    assert sortino_distribution_share(1.0, [np.nan]) is None

"""Statistics of the proxy-vs-economy report: does the metric models are selected on in validation predict
the money they make out of sample better than luck, and how likely is the best validation variant merely the
luckiest of those tried?

The unit of data is a cell, one (crypto, fold) pair; each variant has one value per cell and metric.
Conventions shared by every function: inputs are array-likes of floats in which NaN (or None) marks a
missing value; a missing value drops its whole pair (or, in a matrix, that entry); a statistic that does
not exist on the data left is None, never NaN. "Better" always means higher.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

EULER_GAMMA = 0.5772156649015329  # Euler–Mascheroni constant


def _finite_pairs(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, ...]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d and of one length, got shapes {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep], keep


# Rank correlation


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Spearman's rank correlation: Pearson's correlation of the average ranks (ties share the mean of
    the ranks they span, as scipy.stats.spearmanr). Pairs with a NaN on either side are dropped; None with
    fewer than 3 pairs left or when either side is constant."""
    x, y, _ = _finite_pairs(x, y)
    if x.size < 3:
        return None
    rx = stats.rankdata(x) - (x.size + 1) / 2
    ry = stats.rankdata(y) - (y.size + 1) / 2
    sxx, syy = float(rx @ rx), float(ry @ ry)
    if sxx == 0 or syy == 0:
        return None
    return float(np.clip(rx @ ry / math.sqrt(sxx * syy), -1.0, 1.0))


def _weighted_average_ranks(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks of `values` in every row's sample, where row b holds value i `weights[b, i]` times.
    Returns the ranks (rows x values) and, per row, the number of distinct values present."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    last_of_group = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
    group_of = np.repeat(np.arange(last_of_group.size), np.diff(np.append(-1, last_of_group)))
    through = np.cumsum(weights[:, order], axis=1)[:, last_of_group]  # copies up to each group's end
    count = np.diff(through, axis=1, prepend=0.0)  # copies inside each group
    group_rank = through - (count - 1) / 2  # mean of the ranks (through - count + 1) .. through
    ranks = np.empty_like(weights, dtype=float)
    ranks[:, order] = group_rank[:, group_of]
    return ranks, (count > 0).sum(axis=1)


def _weighted_spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman's rho of every row's sample (pair i repeated `weights[b, i]` times); NaN where undefined."""
    rx, distinct_x = _weighted_average_ranks(x, weights)
    ry, distinct_y = _weighted_average_ranks(y, weights)
    total = weights.sum(axis=1, keepdims=True)
    dx = rx - (weights * rx).sum(axis=1, keepdims=True) / total
    dy = ry - (weights * ry).sum(axis=1, keepdims=True) / total
    sxy, sxx, syy = ((weights * a * b).sum(axis=1) for a, b in ((dx, dy), (dx, dx), (dy, dy)))
    defined = (total[:, 0] >= 3) & (distinct_x >= 2) & (distinct_y >= 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
    return np.where(defined, rho, np.nan)


def spearman_bootstrap(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    cells: Sequence[Hashable],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, float | None, float | None]:
    """(rho, lo, hi): Spearman's rho on all pairs and a percentile interval from a cluster bootstrap.

    `cells[i]` labels pair i's cell (any hashable, e.g. a (crypto, fold) tuple). A resample draws as many
    cells as there are, with replacement, from `numpy.random.default_rng(seed)`; a drawn cell brings all
    its pairs, once per draw. Pairs within a cell are not independent (one fold, one market), so resampling
    pairs would understate the uncertainty. Resamples whose rho is undefined (fewer than 3 pairs, a constant
    side) are skipped; lo and hi are the (1 - level) / 2 and (1 + level) / 2 quantiles of the rest (numpy's
    linear interpolation; Efron and Tibshirani 1993, ch. 13). lo and hi are None with fewer than 2 distinct
    cells or no defined resample."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if len(cells) != np.asarray(x).shape[0]:
        raise ValueError(f"{len(cells)} cell labels for {np.asarray(x).shape[0]} pairs")
    x, y, keep = _finite_pairs(x, y)
    rho = spearman(x, y)
    index: dict[Hashable, int] = {}
    codes = np.asarray([index.setdefault(c, len(index)) for c, k in zip(cells, keep, strict=True) if k])
    n_cells = len(index)
    if n_cells < 2 or n_boot < 1:
        return rho, None, None

    draws = np.random.default_rng(seed).integers(0, n_cells, size=(n_boot, n_cells))
    offsets = n_cells * np.arange(n_boot)[:, None]
    times_drawn = np.bincount((draws + offsets).ravel(), minlength=n_boot * n_cells).reshape(n_boot, n_cells)
    rhos = _weighted_spearman(x, y, times_drawn[:, codes].astype(float))
    rhos = rhos[~np.isnan(rhos)]
    if rhos.size == 0:
        return rho, None, None
    lo, hi = np.quantile(rhos, [(1 - level) / 2, (1 + level) / 2])
    return rho, float(lo), float(hi)


# Paired comparison with a baseline


@dataclass(frozen=True)
class PairedTest:
    n: int  # pairs with both values present
    share_better: float | None  # share of pairs with a > b; a tie is not better. None when n = 0
    sign_p: float | None  # two-sided exact sign test on the non-tied pairs; None without one
    wilcoxon_p: float | None  # two-sided Wilcoxon signed-rank test; None without a non-zero difference


def paired_comparison(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> PairedTest:
    """A variant `a` against a baseline `b`, paired per cell. The sign test is scipy.stats.binomtest
    (p = 0.5) on the count of a > b among the pairs that differ; the signed-rank test is
    scipy.stats.wilcoxon on a - b with zero_method="wilcox" (zero differences dropped) and scipy's
    default method="auto" (exact for small samples without ties)."""
    a, b, _ = _finite_pairs(a, b)
    n = int(a.size)
    diff = a - b
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    sign_p = stats.binomtest(wins, wins + losses, p=0.5).pvalue if wins + losses else None
    wilcoxon_p = stats.wilcoxon(diff, zero_method="wilcox").pvalue if wins + losses else None
    return PairedTest(
        n=n,
        share_better=wins / n if n else None,
        sign_p=None if sign_p is None else float(sign_p),
        wilcoxon_p=None if wilcoxon_p is None else float(wilcoxon_p),
    )


# Probability of backtest overfitting


@dataclass(frozen=True)
class Pbo:
    pbo: float | None  # share of the defined combinations whose logit is <= 0; None when none is defined
    logits: np.ndarray  # one logit per defined combination, in itertools.combinations order
    n_combinations: int  # the defined combinations (those counted in pbo)
    n_groups: int  # S, the number of contiguous row groups; 0 when the matrix is too small


def default_n_groups(n_rows: int) -> int:
    """The largest even number <= min(n_rows, 16), at least 2."""
    return max(2, min(n_rows, 16) // 2 * 2)


def _half_means(values: np.ndarray, groups: list[np.ndarray], member: np.ndarray) -> np.ndarray:
    """Per combination (rows of `member`, 0/1 over the groups) and variant: the mean of the finite values in
    the rows of the member groups; NaN where there is none."""
    present = np.isfinite(values)
    sums = np.stack([np.where(present[g], values[g], 0.0).sum(axis=0) for g in groups])
    counts = np.stack([present[g].sum(axis=0) for g in groups]).astype(float)
    total, count = member @ sums, member @ counts
    return np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)


def probability_of_backtest_overfitting(
    performance: np.ndarray,
    *,
    n_groups: int | None = None,
    selection: np.ndarray | None = None,
) -> Pbo:
    """Combinatorially symmetric cross-validation (CSCV): Bailey, Borwein, López de Prado and Zhu (2014),
    "The Probability of Backtest Overfitting", J. Computational Finance 20(4).

    `performance` is (T cells x N variants), rows in time order: the out-of-sample outcome (e.g. test
    sortino). The rows are split into S contiguous groups as equal as possible (numpy.array_split; S even,
    default `default_n_groups(T)`). For each of the C(S, S/2) choices of S/2 groups as in-sample (IS), the
    rest out-of-sample (OOS), a variant's statistic on a half is the mean of its finite values there (a
    non-finite entry is missing). The chosen variant n* has the best IS mean of `selection` (the metric
    models are chosen by, same shape) or, without it, of `performance`; ties go to the lowest column. Its
    relative OOS rank is w = rank / (N' + 1), rank 1..N' ascending with average ranks on ties, among the N'
    variants with an OOS statistic; the logit is ln(w / (1 - w)), and PBO is the share of logits <= 0.
    A combination is skipped (undefined) when no variant has an IS statistic, n* has no OOS statistic or
    N' < 2. PBO is None when T < 2, N < 2 or no combination is defined."""
    perf = np.asarray(performance, dtype=float)
    chooser = perf if selection is None else np.asarray(selection, dtype=float)
    if perf.ndim != 2 or chooser.shape != perf.shape:
        raise ValueError(
            f"performance must be 2-d and selection of its shape, got {perf.shape}, {chooser.shape}"
        )
    n_rows, n_variants = perf.shape
    if n_rows < 2 or n_variants < 2:
        return Pbo(pbo=None, logits=np.empty(0), n_combinations=0, n_groups=0)
    s = default_n_groups(n_rows) if n_groups is None else n_groups
    if s < 2 or s % 2 or s > n_rows:
        raise ValueError(f"n_groups must be even and within [2, {n_rows}], got {s}")

    groups = np.array_split(np.arange(n_rows), s)
    halves = np.asarray(list(itertools.combinations(range(s), s // 2)))
    in_sample = np.zeros((len(halves), s))
    in_sample[np.arange(len(halves))[:, None], halves] = 1.0
    is_stat = _half_means(chooser, groups, in_sample)
    oos_stat = _half_means(perf, groups, 1.0 - in_sample)

    chosen = np.argmax(np.where(np.isnan(is_stat), -np.inf, is_stat), axis=1)
    chosen_oos = oos_stat[np.arange(len(halves)), chosen][:, None]
    ranked = ~np.isnan(oos_stat)
    below = (ranked & (oos_stat < chosen_oos)).sum(axis=1)
    level = (ranked & (oos_stat == chosen_oos)).sum(axis=1)
    n_ranked = ranked.sum(axis=1)
    defined = (~np.isnan(is_stat)).any(axis=1) & ~np.isnan(chosen_oos[:, 0]) & (n_ranked >= 2)

    omega = (below + (level + 1) / 2)[defined] / (n_ranked[defined] + 1)
    logits = np.log(omega / (1 - omega))
    pbo = float(np.mean(logits <= 0)) if logits.size else None
    return Pbo(pbo=pbo, logits=logits, n_combinations=int(logits.size), n_groups=s)


# Deflated Sharpe ratio


def probabilistic_sharpe_ratio(
    sr: float, benchmark_sr: float, n_obs: int, skew: float, kurtosis: float
) -> float | None:
    """PSR: the probability that the true Sharpe ratio exceeds `benchmark_sr`, given the estimate `sr` on
    `n_obs` observations whose skewness is `skew` and whose (non-excess, normal = 3) kurtosis is `kurtosis`:
    Phi((sr - benchmark_sr) * sqrt(n_obs - 1) / sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr^2)).
    Bailey and López de Prado (2012), "The Sharpe Ratio Efficient Frontier"; eq. (14) of the DSR paper.
    Both ratios are per period (not annualized). None when n_obs < 2 or the variance term is not positive."""
    spread = 1 - skew * sr + (kurtosis - 1) / 4 * sr**2
    if n_obs < 2 or spread <= 0:
        return None
    return float(stats.norm.cdf((sr - benchmark_sr) * math.sqrt(n_obs - 1) / math.sqrt(spread)))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """SR0, the expected largest of `n_trials` Sharpe ratio estimates whose true value is 0 and whose
    variance across trials is `sharpe_variance`: sqrt(V) * ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e))),
    g the Euler–Mascheroni constant (Bailey and López de Prado 2014, "The Deflated Sharpe Ratio", eq. 15).
    One trial has no selection bias: SR0 = 0."""
    if n_trials < 1 or sharpe_variance < 0:
        raise ValueError(f"need n_trials >= 1 and sharpe_variance >= 0, got {n_trials}, {sharpe_variance}")
    if n_trials == 1:
        return 0.0
    z = (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials) + EULER_GAMMA * stats.norm.ppf(
        1 - 1 / (n_trials * math.e)
    )
    return float(math.sqrt(sharpe_variance) * z)


def deflated_sharpe_ratio(
    returns: Sequence[float] | np.ndarray, *, n_trials: int, sharpe_variance: float
) -> float | None:
    """DSR: the PSR of the chosen variant's per-period `returns` against SR0 = expected_max_sharpe(n_trials,
    sharpe_variance); Bailey and López de Prado (2014), "The Deflated Sharpe Ratio", J. Portfolio
    Management 40(5). SR = mean / std with std at ddof=1, per period (not annualized, so `sharpe_variance`
    is the variance of the trials' per-period Sharpe ratios); skewness and non-excess kurtosis are
    scipy.stats.skew / kurtosis(fisher=False) with bias=True (the sample moments). NaN returns are dropped.
    None with fewer than 3 returns or a zero std."""
    r = np.asarray(returns, dtype=float)
    r = r[~np.isnan(r)]
    if r.size < 3:
        return None
    std = float(np.std(r, ddof=1))
    if std == 0:
        return None
    sr = float(np.mean(r)) / std
    skew = float(stats.skew(r, bias=True))
    kurtosis = float(stats.kurtosis(r, fisher=False, bias=True))
    return probabilistic_sharpe_ratio(
        sr, expected_max_sharpe(n_trials, sharpe_variance), r.size, skew, kurtosis
    )


# Against a distribution


def sortino_distribution_share(
    value: float | None, distribution: Sequence[float] | np.ndarray
) -> float | None:
    """The share of the non-NaN values of `distribution` (e.g. random-baseline sortinos across seeds and
    cells) strictly below `value`; a tie is not below. None when `value` is missing or nothing is left."""
    dist = np.asarray(distribution, dtype=float)
    dist = dist[~np.isnan(dist)]
    if value is None or math.isnan(value) or dist.size == 0:
        return None
    return float(np.mean(dist < value))

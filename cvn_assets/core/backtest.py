"""Trade simulation and the economic metrics, shared by every variant and every baseline.

A trade enters at the close of bar e and exits at bar x at price P (the label's exit: the barrier's price,
the open of a bar that gapped through it, or the close at the horizon),
one position at a time. Each side pays `cost_per_side` = (fee + slippage) in bps / 1e4, so a round trip
nets (P / close_e) * (1 - c)^2 - 1. The equity curve is marked to market at every bar of the window; a
trade still open at the window's last bar is settled at its real exit in one extra step, so the total
return is exactly the product of the trades' net factors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

ECONOMIC_METRICS = ("n_trades", "win_rate", "expectancy", "sortino", "total_return", "max_drawdown")


@dataclass(frozen=True)
class Economics:
    n_trades: float
    win_rate: float | None  # None (NULL) when there is no trade: no value exists
    expectancy: float | None  # mean net return per trade
    sortino: float | None  # annualized, on bar returns; None when there is no downside
    total_return: float
    max_drawdown: float  # largest peak-to-trough loss of the equity curve, as a positive fraction

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def cost_per_side(fee_bps: float, slippage_bps: float) -> float:
    """The fraction each side of a trade pays: the fee level plus the slippage, both in bps."""
    return (fee_bps + slippage_bps) / 1e4


def round_trip_net(entry_price: np.ndarray, exit_price: np.ndarray, cost: float) -> np.ndarray:
    """A trade's net return: the price move, less `cost` on entry and again on exit."""
    return exit_price / entry_price * (1 - cost) ** 2 - 1


def select_trades(signal: np.ndarray, exit_pos: np.ndarray) -> np.ndarray:
    """Greedy, non-overlapping entries: take a signal only when flat; the next entry may come at the exit bar."""
    candidates = np.flatnonzero(signal)
    entries: list[int] = []
    free_from = 0
    i = int(np.searchsorted(candidates, free_from))
    while i < candidates.size:
        e = int(candidates[i])
        entries.append(e)
        free_from = max(int(exit_pos[e]), e + 1)
        i = int(np.searchsorted(candidates, free_from, side="left"))
    return np.asarray(entries, dtype=np.int64)


def simulate(
    close: np.ndarray,
    entries: np.ndarray,
    exit_pos: np.ndarray,
    exit_price: np.ndarray,
    *,
    cost: float,
    bars_per_year: float,
) -> Economics:
    """Economics of the given trades. `exit_pos[k]` and `exit_price[k]` belong to `entries[k]`;
    an exit position >= len(close) means the trade ends after the window."""
    entries = np.asarray(entries, dtype=np.int64)
    prices = np.asarray(exit_price, dtype=float)
    growth = equity_growth(close, entries, exit_pos, prices, cost=cost)
    net = round_trip_net(close[entries], prices, cost) if entries.size else np.empty(0)

    returns = growth - 1
    return Economics(
        n_trades=float(entries.size),
        win_rate=win_rate(net),
        expectancy=expectancy(net),
        sortino=sortino_ratio(returns, bars_per_year),
        total_return=float(np.cumprod(growth)[-1] - 1),
        max_drawdown=max_drawdown(growth),
    )


def equity_growth(
    close: np.ndarray, entries: np.ndarray, exit_pos: np.ndarray, exit_price: np.ndarray, *, cost: float
) -> np.ndarray:
    """The equity's factor per slot: growth[i] from bar i-1 to bar i (1 where flat), growth[len] the
    settlement of a trade still open at the window's end. Its product is the total return plus 1."""
    n = close.size
    entries = np.asarray(entries, dtype=np.int64)
    exits = np.asarray(exit_pos, dtype=np.int64)
    growth = np.ones(n + 1)
    if entries.size:
        inside_end = np.minimum(exits, n - 1)
        held = np.zeros(n + 1, dtype=np.int64)
        np.add.at(held, np.minimum(entries + 1, n), 1)
        np.add.at(held, inside_end + 1, -1)
        holding = np.cumsum(held)[:n] > 0
        bar_growth = np.ones(n)
        bar_growth[1:] = close[1:] / close[:-1]
        growth[:n] = np.where(holding, bar_growth, 1.0)
        exit_slot = np.where(exits < n, exits, n)
        last_close = close[np.minimum(exit_slot, n) - 1]
        growth[exit_slot] = np.asarray(exit_price, dtype=float) / last_close
        # Trades that end after the window were held to its last bar and settle in the extra slot.
        np.multiply.at(growth, np.minimum(entries + 1, n), 1 - cost)
        np.multiply.at(growth, exit_slot, 1 - cost)
    return growth


# The metrics, each defined once. Their conventions are quantstats' and empyrical's (checked on the
# bundled BTC series in test_metric_conventions.py).


def sortino_ratio(returns: np.ndarray, periods_per_year: float) -> float | None:
    """mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(periods): downside deviation around 0 over every period
    (quantstats.stats.sortino, empyrical.sortino_ratio). None when no period loses: no downside exists."""
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    return float(np.mean(returns) / downside * np.sqrt(periods_per_year)) if downside > 0 else None


def max_drawdown(growth: np.ndarray) -> float:
    """The largest peak-to-trough fall of the equity compounded from the per-period factors `growth`
    (1 + r), starting from 1, as a positive fraction (empyrical.max_drawdown and
    quantstats.stats.max_drawdown give the same number, negative)."""
    equity = np.concatenate([[1.0], np.cumprod(growth)])
    return float((1 - equity / np.maximum.accumulate(equity)).max())


def expectancy(trade_returns: np.ndarray) -> float | None:
    """The mean net return per trade (arithmetic). None without trades."""
    return float(np.mean(trade_returns)) if trade_returns.size else None


def win_rate(trade_returns: np.ndarray) -> float | None:
    """The share of trades whose net return is above 0; a trade that nets exactly 0 is not a win but counts
    (quantstats.stats.win_rate leaves it out). None without trades."""
    return float(np.mean(trade_returns > 0)) if trade_returns.size else None

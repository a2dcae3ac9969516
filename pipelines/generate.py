"""Stage `generate`: the transaction simulator of the fraud handbook, vectorised with NumPy.

Design (Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection*):
customers with a home location, a spending mean and spread and a daily transaction rate;
terminals at random locations; each customer pays at the terminals within a radius of home;
a Poisson number of payments a day, time of day around noon; three fraud scenarios.
Same seed and config give byte-identical output. A later production period can carry
injected drift for the monitoring loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from pipelines import schema
from pipelines.config import FraudScenarios, Generate, Production

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400
Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Profiles:
    """Customer and terminal profiles, fixed for a seed, shared by every period."""

    amount_mean: Floats
    amount_sd: Floats
    tx_per_day: Floats
    terminal_offsets: Ints  # customer c uses terminals[offsets[c]:offsets[c] + counts[c]]
    terminal_counts: Ints
    terminals: Ints


def make_profiles(cfg: Generate) -> Profiles:
    """Draw customer and terminal profiles; the radius keeps ~75 terminals per customer."""
    rng = np.random.default_rng([cfg.seed, 0])
    homes = rng.uniform(0, cfg.area_size, size=(cfg.n_customers, 2))
    amount_mean = rng.uniform(cfg.amount_mean_min, cfg.amount_mean_max, cfg.n_customers)
    tx_per_day = rng.uniform(0, cfg.tx_per_day_max, cfg.n_customers)
    terminal_xy = rng.uniform(0, cfg.area_size, size=(cfg.n_terminals, 2))
    radius = cfg.terminal_radius * np.sqrt(cfg.reference_terminals / cfg.n_terminals)
    nearby = cKDTree(terminal_xy).query_ball_point(homes, r=radius, return_sorted=True)
    counts = np.fromiter((len(n) for n in nearby), dtype=np.int64, count=cfg.n_customers)
    flat = np.fromiter((t for n in nearby for t in n), dtype=np.int64, count=int(counts.sum()))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return Profiles(amount_mean, amount_mean / 2, tx_per_day, offsets, counts, flat)


def _payments(cfg: Generate, p: Profiles, first_day: int, n_days: int, stream: int) -> pd.DataFrame:
    """Legitimate payments of every customer over [first_day, first_day + n_days)."""
    rng = np.random.default_rng([cfg.seed, stream])
    per_day = rng.poisson(np.repeat(p.tx_per_day, n_days).reshape(-1, n_days))
    customer = np.repeat(np.arange(cfg.n_customers, dtype=np.int64), per_day.sum(axis=1))
    days = np.tile(np.arange(first_day, first_day + n_days, dtype=np.int64), cfg.n_customers)
    day = np.repeat(days, per_day.ravel())
    # The handbook truncates the drawn time to whole seconds and drops times outside the day.
    seconds = rng.normal(cfg.time_of_day_mean_s, cfg.time_of_day_sd_s, customer.size).astype(
        np.int64
    )
    drawn = rng.normal(p.amount_mean[customer], p.amount_sd[customer])
    redraw = rng.uniform(0, 2 * p.amount_mean[customer])
    amount = np.round(np.where(drawn < 0, redraw, drawn), 2)
    pick = rng.random(customer.size)
    n_terms = p.terminal_counts[customer]
    keep = (seconds > 0) & (seconds < SECONDS_PER_DAY) & (n_terms > 0)
    slot = p.terminal_offsets[customer] + (pick * n_terms).astype(np.int64)
    terminal = p.terminals[np.minimum(slot, p.terminals.size - 1)] if p.terminals.size else slot
    return pd.DataFrame(
        {
            "day": day[keep],
            "seconds": seconds[keep],
            schema.CUSTOMER_ID: customer[keep],
            schema.TERMINAL_ID: terminal[keep],
            schema.TX_AMOUNT: amount[keep],
        }
    )


def _compromised(
    seed: int, kind: int, days: range, population: int, per_day: int, span: int
) -> Ints:
    """Keys `entity * 2**20 + day` of every (entity, day) under compromise in `days`.

    Each day draws its own victims from a generator seeded by the day (as the handbook seeds
    by day), so a period sees the same compromises whatever else is simulated.
    """
    keys = []
    per_day = min(per_day, population)
    # Compromises begin on day 0 of the simulated world, as in the handbook.
    for start in range(max(0, days.start - span + 1), days.stop):
        victims = np.random.default_rng([seed, kind, start + 1_000_000]).choice(
            population, per_day, replace=False
        )
        covered = np.arange(max(start, days.start), min(start + span, days.stop))
        keys.append((victims[:, None] * 2**20 + covered[None, :]).ravel())
    return np.unique(np.concatenate(keys)) if keys else np.empty(0, dtype=np.int64)


def _under_compromise(
    df: pd.DataFrame,
    column: str,
    seed: int,
    kind: int,
    days: range,
    population: int,
    per_day: int,
    span: int,
) -> NDArray[np.bool_]:
    """Rows whose entity (`column`) is compromised on the row's day."""
    keys = df[column].to_numpy() * 2**20 + df["day"].to_numpy()
    return np.isin(keys, _compromised(seed, kind, days, population, per_day, span))


def apply_fraud(
    df: pd.DataFrame, seed: int, fraud: FraudScenarios, days: range, stream: int
) -> None:
    """Label the handbook's scenarios in place (later scenarios take precedence, as there)."""
    rng = np.random.default_rng([seed, stream, 7])
    amount = df[schema.TX_AMOUNT].to_numpy().copy()
    scenario = np.where(amount > fraud.amount_threshold, 1, 0).astype(np.int8)
    terminals = _under_compromise(
        df,
        schema.TERMINAL_ID,
        seed,
        2,
        days,
        int(df.attrs["n_terminals"]),
        fraud.compromised_terminals_per_day,
        fraud.terminal_compromise_days,
    )
    scenario[terminals] = 2
    customers = _under_compromise(
        df,
        schema.CUSTOMER_ID,
        seed,
        3,
        days,
        int(df.attrs["n_customers"]),
        fraud.compromised_customers_per_day,
        fraud.customer_compromise_days,
    )
    chosen = customers & (rng.random(len(df)) < fraud.customer_fraud_share)
    amount[chosen] = np.round(amount[chosen] * fraud.customer_amount_factor, 2)
    scenario[chosen] = 3
    df[schema.TX_AMOUNT] = amount
    df[schema.TX_FRAUD] = (scenario > 0).astype(np.int8)
    df[schema.TX_FRAUD_SCENARIO] = scenario


def finalize(df: pd.DataFrame, cfg: Generate, first_id: int) -> pd.DataFrame:
    """Sort by time, assign transaction ids, and return the contract's columns and types."""
    order = np.lexsort(
        (df[schema.CUSTOMER_ID].to_numpy(), df["seconds"].to_numpy(), df["day"].to_numpy())
    )
    df = df.iloc[order].reset_index(drop=True)
    start = np.datetime64(cfg.start_date.isoformat(), "us")
    offset = df["day"].to_numpy() * SECONDS_PER_DAY + df["seconds"].to_numpy()
    df[schema.TX_DATETIME] = start + offset.astype("timedelta64[s]")
    df[schema.TRANSACTION_ID] = np.arange(first_id, first_id + len(df), dtype=np.int64)
    return df[list(schema.RAW_COLUMNS)].astype(schema.RAW_DTYPES)


def simulate_history(cfg: Generate, profiles: Profiles | None = None) -> pd.DataFrame:
    """The historical period: `n_days` from `start_date`, labelled."""
    profiles = profiles or make_profiles(cfg)
    df = _payments(cfg, profiles, 0, cfg.n_days, stream=1)
    df.attrs.update(n_terminals=cfg.n_terminals, n_customers=cfg.n_customers)
    apply_fraud(df, cfg.seed, cfg.fraud, range(0, cfg.n_days), stream=1)
    log.info("simulated %d transactions over %d days", len(df), cfg.n_days)
    return finalize(df, cfg, first_id=0)


def _new_fraud_pattern(
    cfg: Generate, prod: Production, first_day: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Card testing: bursts of tiny payments at night at unfamiliar terminals (scenario 4)."""
    n = prod.n_days * prod.new_pattern_customers_per_day
    victims = rng.integers(0, cfg.n_customers, n)
    day = first_day + np.repeat(np.arange(prod.n_days), prod.new_pattern_customers_per_day)
    size = n * prod.new_pattern_tx_per_customer
    return pd.DataFrame(
        {
            "day": np.repeat(day, prod.new_pattern_tx_per_customer),
            "seconds": rng.integers(3_600, 5 * 3_600, size),
            schema.CUSTOMER_ID: np.repeat(victims, prod.new_pattern_tx_per_customer),
            schema.TERMINAL_ID: rng.integers(0, cfg.n_terminals, size),
            schema.TX_AMOUNT: np.round(rng.uniform(0.5, prod.new_pattern_amount_max, size), 2),
            schema.TX_FRAUD: np.ones(size, dtype=np.int8),
            schema.TX_FRAUD_SCENARIO: np.full(size, 4, dtype=np.int8),
        }
    )


def _inject_drift(
    df: pd.DataFrame, cfg: Generate, prod: Production, first_day: int
) -> pd.DataFrame:
    """Apply the configured drift scenario to a labelled production period."""
    rng = np.random.default_rng([cfg.seed, 3, 11])
    if prod.drift == "new_fraud_pattern":
        return pd.concat([df, _new_fraud_pattern(cfg, prod, first_day, rng)], ignore_index=True)
    if prod.drift == "amount_inflation":
        # Prices rise after labelling: the same behaviour, bigger numbers.
        df[schema.TX_AMOUNT] = np.round(df[schema.TX_AMOUNT] * prod.amount_inflation_factor, 2)
    elif prod.drift == "new_terminals":
        moved = rng.random(len(df)) < prod.new_terminal_share
        new_ids = cfg.n_terminals + rng.integers(0, prod.new_terminals, int(moved.sum()))
        df.loc[moved, schema.TERMINAL_ID] = new_ids
    return df


def simulate_production(cfg: Generate, prod: Production) -> pd.DataFrame:
    """The `production.n_days` after the history, same world, with the configured drift.

    Transaction ids continue after the history's, so both periods can be scored together.
    """
    profiles = make_profiles(cfg)
    history_rows = len(simulate_history(cfg, profiles))
    first_day, n_days = cfg.n_days, prod.n_days
    df = _payments(cfg, profiles, first_day, n_days, stream=2)
    df.attrs.update(n_terminals=cfg.n_terminals, n_customers=cfg.n_customers)
    apply_fraud(df, cfg.seed, cfg.fraud, range(first_day, first_day + n_days), stream=2)
    df = _inject_drift(df, cfg, prod, first_day)
    log.info("simulated %d production transactions (drift: %s)", len(df), prod.drift)
    return finalize(df, cfg, first_id=history_rows)

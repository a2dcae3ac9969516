"""The oracle for the `features` stage: the fraud handbook's pandas implementation.

Written the way the handbook and most tutorials do it: group by entity, apply a per-entity
function that indexes by timestamp and takes time-based rolling windows, then the delay
shift for terminals. One deliberate change: rolling windows in pandas count tied
timestamps by row position, so the value of the last row of each tie is given to all of
its ties (our rule: every transaction at the same instant counts, deterministically).
The tests check the DuckDB stage against it; `make bench` times both on the same data.
"""

from __future__ import annotations

import pandas as pd


def _ties_share_last(rolled: pd.Series) -> pd.Series:
    return rolled.groupby(level=0, sort=False).transform("last")


def customer_spending(tx: pd.DataFrame, windows: list[int], ratio: bool = True) -> pd.DataFrame:
    """Per-customer count and mean amount over the last 1, 7, 30 days (inclusive), and the
    amount over the mean (`ratio`)."""
    tx = tx.sort_values("tx_datetime", kind="stable")
    tx.index = tx["tx_datetime"]
    for w in windows:
        amount_sum = _ties_share_last(tx["tx_amount"].rolling(f"{w}d").sum())
        count = _ties_share_last(tx["tx_amount"].rolling(f"{w}d").count())
        tx[f"customer_id_nb_tx_{w}day_window"] = list(count)
        tx[f"customer_id_avg_amount_{w}day_window"] = list(amount_sum / count)
        mean = tx[f"customer_id_avg_amount_{w}day_window"]
        if ratio:
            tx[f"customer_id_amount_ratio_{w}day_window"] = (tx["tx_amount"] / mean).where(
                mean > 0, 1.0
            )
    tx.index = tx["transaction_id"]
    return tx


def terminal_risk(tx: pd.DataFrame, delay: int, windows: list[int]) -> pd.DataFrame:
    """Per-terminal count and fraud rate over windows shifted back by the label delay."""
    tx = tx.sort_values("tx_datetime", kind="stable")
    tx.index = tx["tx_datetime"]
    fraud_delay = _ties_share_last(tx["tx_fraud"].rolling(f"{delay}d").sum())
    count_delay = _ties_share_last(tx["tx_fraud"].rolling(f"{delay}d").count())
    for w in windows:
        fraud_all = _ties_share_last(tx["tx_fraud"].rolling(f"{delay + w}d").sum())
        count_all = _ties_share_last(tx["tx_fraud"].rolling(f"{delay + w}d").count())
        count = count_all - count_delay
        tx[f"terminal_id_nb_tx_{w}day_window"] = list(count)
        tx[f"terminal_id_risk_{w}day_window"] = list((fraud_all - fraud_delay) / count)
    tx.index = tx["transaction_id"]
    return tx.fillna(0)


def build_features(
    tx: pd.DataFrame,
    delay: int,
    customer_windows: list[int],
    terminal_windows: list[int],
    night_max_hour: int = 6,
    amount_ratio: bool = True,
) -> pd.DataFrame:
    """All baseline features, one row per transaction, ordered by transaction id."""
    tx = tx.copy()
    tx["tx_during_weekend"] = (tx["tx_datetime"].dt.weekday >= 5).astype(int)
    tx["tx_during_night"] = (tx["tx_datetime"].dt.hour <= night_max_hour).astype(int)
    # Grouping by the values (not the column name) keeps the column inside each group.
    tx = tx.groupby(tx["customer_id"].to_numpy(), group_keys=False).apply(
        lambda g: customer_spending(g, customer_windows, amount_ratio)
    )
    tx = tx.groupby(tx["terminal_id"].to_numpy(), group_keys=False).apply(
        lambda g: terminal_risk(g, delay, terminal_windows)
    )
    return tx.reset_index(drop=True).sort_values("transaction_id").reset_index(drop=True)

"""The data contracts shared by every stage and service: the raw transaction's columns and
types, the model's feature columns, the online store's seed file. Nothing heavy is imported
here: the scoring service reads it too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pipelines.config import DeclaredColumn, Features, Validate

TRANSACTION_ID: Final = "transaction_id"
TX_DATETIME: Final = "tx_datetime"
CUSTOMER_ID: Final = "customer_id"
TERMINAL_ID: Final = "terminal_id"
TX_AMOUNT: Final = "tx_amount"
TX_FRAUD: Final = "tx_fraud"
TX_FRAUD_SCENARIO: Final = "tx_fraud_scenario"

# The value rules of a raw transaction: one definition, read by the `validate` stage (pandera)
# and the scoring API (pydantic); the datetime range is `validate.min_datetime/max_datetime`.
MIN_ID: Final = 0
MAX_ID: Final = 2**63 - 1  # ids are 64-bit integers everywhere (parquet, SQLite, Redis)
MIN_AMOUNT: Final = 0  # inclusive; amounts are finite
# Amounts at or above this are refused in any currency unit: beyond it the exact decimal sums
# of the feature windows (DECIMAL(18, 6)) would overflow.
MAX_AMOUNT: Final = 1e12


@dataclass(frozen=True)
class DatetimeRange:
    """When a transaction may have happened: `low` to `high` inclusive, naive UTC."""

    low: dt.datetime
    high: dt.datetime

    @classmethod
    def of(cls, limits: Validate) -> DatetimeRange:
        """The configured range (`validate.min_datetime`, `validate.max_datetime`)."""
        return cls(naive_utc(limits.min_datetime), naive_utc(limits.max_datetime))

    def __contains__(self, when: dt.datetime) -> bool:
        """Whether `when` is in range; naive is UTC, zoned is compared as the instant it names
        (without converting it, which overflows at the ends of the calendar: year 1 at +01:00)."""
        if when.tzinfo is None:
            return self.low <= when <= self.high
        return self.low.replace(tzinfo=dt.UTC) <= when <= self.high.replace(tzinfo=dt.UTC)

    def __str__(self) -> str:
        return f"from {self.low.isoformat()} to {self.high.isoformat()} UTC"


def naive_utc(when: dt.datetime) -> dt.datetime:
    """`when` as a naive UTC datetime (naive values are UTC already)."""
    return when if when.tzinfo is None else when.astimezone(dt.UTC).replace(tzinfo=None)


# Column -> pandas dtype of a clean row. Order is the column order of every written file.
RAW_DTYPES: Final[dict[str, str]] = {
    TRANSACTION_ID: "int64",
    TX_DATETIME: "datetime64[us]",
    CUSTOMER_ID: "int64",
    TERMINAL_ID: "int64",
    TX_AMOUNT: "float64",
    TX_FRAUD: "int8",
    TX_FRAUD_SCENARIO: "int8",
}
RAW_COLUMNS: Final = tuple(RAW_DTYPES)
# Columns a user's own data must provide; the simulator-only scenario column is optional.
REQUIRED_COLUMNS: Final = tuple(c for c in RAW_COLUMNS if c != TX_FRAUD_SCENARIO)
# Fields a scoring request carries: the raw transaction without its labels.
REQUEST_COLUMNS: Final = (TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT)

DAY_US: Final = 86_400 * 1_000_000  # timestamps are microseconds since the epoch
EVENTS: Final = "events.parquet"  # what the `materialize` stage writes, the online store seeds


def customer_kinds(cfg: Features) -> tuple[str, ...]:
    """The features of each customer window, in output order."""
    base = ("nb_tx", "avg_amount")
    return (*base, "amount_ratio") if cfg.customer_amount_ratio else base


def customer_columns(cfg: Features) -> list[str]:
    """Names of the customer window features, in output order."""
    return [
        f"customer_id_{kind}_{w}day_window"
        for w in cfg.customer_windows_days
        for kind in customer_kinds(cfg)
    ]


def terminal_columns(cfg: Features) -> list[str]:
    """Names of the terminal window features, in output order."""
    return [
        f"terminal_id_{kind}_{w}day_window"
        for w in cfg.terminal_windows_days
        for kind in ("nb_tx", "risk")
    ]


def reach_days(cfg: Features) -> int:
    """How many days back any window of a transaction reaches (0: no windows configured)."""
    terminal = [cfg.label_delay_days + w for w in cfg.terminal_windows_days]
    previous = [cfg.customer_since_previous_days, cfg.terminal_since_previous_days]
    return max([*cfg.customer_windows_days, *terminal, *previous], default=0)


def previous_columns(cfg: Features) -> list[str]:
    """Days since the customer's, then the terminal's, previous transaction (when set)."""
    caps = (
        (CUSTOMER_ID, cfg.customer_since_previous_days),
        (TERMINAL_ID, cfg.terminal_since_previous_days),
    )
    return [f"{entity}_days_since_previous_tx" for entity, cap in caps if cap]


def history_column(cfg: Features) -> str | None:
    """The count of the longest customer window: how much history a customer has."""
    w = max(cfg.customer_windows_days, default=None)
    return None if w is None else f"customer_id_nb_tx_{w}day_window"


TX_HOUR: Final = "tx_hour"


def declared_dtype(column: DeclaredColumn) -> str:
    """The pandas dtype of a declared column in a clean file."""
    return "float64" if column.kind == "numeric" else "string"


def raw_dtypes(declared: Sequence[DeclaredColumn] = ()) -> dict[str, str]:
    """Column -> dtype of a clean row: the contract's, then the declared columns
    (`features.columns`)."""
    return {**RAW_DTYPES, **{c.name: declared_dtype(c) for c in declared}}


def raw_columns(declared: Sequence[DeclaredColumn] = ()) -> tuple[str, ...]:
    """The columns of a clean row, in file order."""
    return tuple(raw_dtypes(declared))


def request_columns(cfg: Features) -> tuple[str, ...]:
    """The fields of a scoring request: the contract's, then the declared columns."""
    return (*REQUEST_COLUMNS, *(c.name for c in cfg.columns))


def transaction_columns(cfg: Features) -> list[str]:
    """The per-transaction features beyond the base three: the hour (when declared), then
    the declared columns' (a numeric column's value, a categorical column's 0/1 flags)."""
    hour = [TX_HOUR] if cfg.hour_of_day else []
    return hour + [name for c in cfg.columns for name in c.feature_names()]


def feature_columns(cfg: Features) -> list[str]:
    """The model's input columns, in order: one definition for training and serving."""
    base = [TX_AMOUNT, "tx_during_weekend", "tx_during_night"]
    windowed = customer_columns(cfg) + terminal_columns(cfg) + previous_columns(cfg)
    return base + transaction_columns(cfg) + windowed

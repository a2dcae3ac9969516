"""The raw transaction contract: column names and types shared by every stage and service."""

from __future__ import annotations

from typing import Final

TRANSACTION_ID: Final = "transaction_id"
TX_DATETIME: Final = "tx_datetime"
CUSTOMER_ID: Final = "customer_id"
TERMINAL_ID: Final = "terminal_id"
TX_AMOUNT: Final = "tx_amount"
TX_FRAUD: Final = "tx_fraud"
TX_FRAUD_SCENARIO: Final = "tx_fraud_scenario"

# Amounts at or above this are refused in any currency unit: beyond it the exact decimal sums
# of the feature windows (DECIMAL(18, 6)) would overflow.
MAX_AMOUNT: Final = 1e12

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

"""Request times: naive ones are UTC, aware ones are converted, to the microsecond."""

from __future__ import annotations

import datetime as dt

from serving.features import epoch_us
from serving.schemas import TRANSACTION


def test_aware_times_are_converted_to_utc_and_naive_ones_are_utc() -> None:
    body = '{"transaction_id": 1, "customer_id": 1, "terminal_id": 1, "tx_amount": 1.5, '
    aware = TRANSACTION.validate_json(body + '"tx_datetime": "2018-05-10T14:30:00.000007+02:00"}')
    naive = TRANSACTION.validate_json(body + '"tx_datetime": "2018-05-10T12:30:00.000007"}')
    zulu = TRANSACTION.validate_json(body + '"tx_datetime": "2018-05-10T12:30:00.000007Z"}')
    got = epoch_us([tx["tx_datetime"] for tx in (aware, naive, zulu)]).tolist()
    expected = (dt.datetime(2018, 5, 10, 12, 30, 0, 7) - dt.datetime(1970, 1, 1)) // dt.timedelta(
        microseconds=1
    )
    assert got == [expected] * 3

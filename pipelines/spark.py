"""Every Spark call of the project: the session, reading the clean parquet, running the
feature statement and writing its result as one parquet file. PySpark is imported only
inside these functions, and only the `features` stage with `engine.kind: spark` calls them.

`local[N]` runs Spark inside this process's JVM on N cores, bound to 127.0.0.1 and without
the web UI: nothing listens beyond loopback and nothing is downloaded (no Maven packages).
Another master URL (`spark://host:7077`, `k8s://...`, `yarn`) runs the same statement on that
cluster (docs/scale.md). The session runs in UTC: the data's timestamps are naive UTC.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import Engine

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# What every session needs to compute what DuckDB computes; `engine.spark_conf` adds the rest.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",  # naive parquet timestamps stay naive
}
# Local mode only: loopback, no UI (a cluster's driver must be reachable by its executors).
LOCAL_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def settings(engine: Engine) -> dict[str, str]:
    """The Spark settings of a session of `engine`."""
    local = engine.spark_master.startswith("local")
    return {**(LOCAL_CONF if local else {}), **engine.spark_conf, **REQUIRED_CONF}


@contextmanager
def session(engine: Engine) -> Iterator[SparkSession]:
    """The active Spark session (a caller's, kept running), or a new one stopped at the end."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in REQUIRED_CONF.items():
            active.conf.set(key, value)
        yield active
        return
    if engine.spark_master.startswith("local"):
        # Spark otherwise looks up the host's address for its services (and warns about it).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(engine.spark_master).appName("fraudops-features")
    for key, value in settings(engine).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


def sql_to_parquet(spark: SparkSession, sql: str, views: dict[str, Path], out: Path) -> None:
    """Run `sql` over the parquet files `views` (view name -> path) and write its result,
    in its order, as the single parquet file `out` (what the DuckDB engine writes)."""
    for name, path in views.items():
        spark.read.parquet(str(path)).createOrReplaceTempView(name)
    result = spark.sql(sql)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        parts = Path(tmp) / "parts"
        # One output partition after the sort: coalescing keeps the sorted order.
        result.coalesce(1).write.mode("overwrite").parquet(str(parts))
        files = sorted(parts.glob("part-*.parquet"))
        if len(files) != 1:
            raise RuntimeError(f"Spark wrote {len(files)} parquet parts to {parts}, expected 1")
        shutil.move(files[0], out)
    log.info("spark: wrote %s", out)

"""Each table's Delta snapshot state, computed between micro-batches instead of inside them.

Every idempotent write (``txnAppId``/``txnVersion``) asks the table's snapshot for the last
version its app id committed. Delta 4.4.0 answers from the snapshot's full state
(``Snapshot.computedState``: it does not read the checksum's copy of the set transactions) and
computes it at the start of the write: one job of three small stages and the driver's planning,
1-2 s a table on two cores, while the batch waits. That state belongs to the snapshot the
table's own last commit left, which the next write reuses as long as nothing else commits. So
once a batch has committed, the writer asks for it in background threads: it is computed while
Spark writes its offset and commit logs and plans the next batch, and the next write finds it
ready. It is a lazy value: a write that comes first waits for the same computation, never
repeats it; a snapshot another writer made stale is replaced by the write's own, as without
this.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class SnapshotWarmer:
    """Computes tables' Delta snapshot state in background driver threads."""

    def __init__(self, spark: SparkSession, threads: int = 2) -> None:
        self._spark = spark
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="delta-snapshot")
        self._pending: list[Future[None]] = []

    def warm(self, uris: Iterable[str]) -> None:
        """Start computing the current snapshot state of each table (returns at once)."""
        self._pending = [f for f in self._pending if not f.done()]
        self._pending += [self._pool.submit(self._compute, uri) for uri in uris]

    def wait(self) -> None:
        """Until every started computation has ended (tests; shutting down)."""
        for f in self._pending:
            f.result()
        self._pending = []

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _compute(self, uri: str) -> None:
        from py4j.protocol import Py4JError

        jvm = self._spark.sparkContext._jvm  # type: ignore[attr-defined]
        try:
            delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(
                self._spark._jsparkSession,  # type: ignore[attr-defined]
                uri,
            )
            delta_log.unsafeVolatileSnapshot().computedState()
        except Py4JError as exc:  # only an optimisation: the write computes it if this fails
            log.debug("snapshot state of %s not computed ahead: %s", uri, exc)

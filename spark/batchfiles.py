"""A micro-batch's Parquet files, written once, straight to their final batch-named paths.

Why not ``df.write`` with dynamic partition overwrite: on S3 its commit renames every file
three times (task attempt → job temp → ``.spark-staging`` → partition) and an S3 rename is a
copy, a delete and directory-marker upkeep: about 150 requests and seconds per table per
micro-batch. Here one Spark job writes every table of the batch through a Python data source
(``pyspark.sql.datasource``, Arrow batches, no per-row Python): each task turns its rows into
Parquet with pyarrow and PUTs them to ``<table>/<partitions>/batch_id=<n>/part-<task>.parquet``.
The name depends only on the batch, the partition values and the task, so a replay of the batch
after ``kill -9`` (same offsets, same rows, same tasks) PUTs the same names again; the job's
commit then deletes whatever else a killed attempt left in those folders. A PUT is atomic: a
reader sees a whole file or none, and no ``_temporary``/``.spark-staging`` folder is made.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, astuple, dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage
from pyspark.sql.types import StructType

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow import fs as pafs
    from pyspark.sql import DataFrame, SparkSession

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # Spark's folder name for a null partition value


@dataclass(frozen=True)
class Store:
    """The lake root and how to reach it; plain strings, so Spark ships it to the executors."""

    root: str
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, spark: SparkSession, root: str) -> Store:
        """The session's own s3a settings (spark/session.py), so both writers agree."""
        conf = spark.sparkContext.getConf()
        key = "spark.hadoop.fs.s3a."
        return cls(
            root=root,
            endpoint=conf.get(key + "endpoint"),
            access_key=conf.get(key + "access.key"),
            secret_key=conf.get(key + "secret.key"),
            region=conf.get(key + "endpoint.region"),
        )

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the root as a path on it (no scheme, no trailing /)."""
        from pyarrow import fs as pafs

        url = urlparse(self.root)
        if url.scheme in ("s3", "s3a"):
            endpoint = urlparse(self.endpoint) if self.endpoint else None
            s3 = pafs.S3FileSystem(
                access_key=self.access_key,
                secret_key=self.secret_key,
                region=self.region or "us-east-1",
                endpoint_override=endpoint.netloc if endpoint else None,
                scheme=endpoint.scheme if endpoint else "https",
            )
            return s3, f"{url.netloc}{url.path}".rstrip("/")
        return pafs.LocalFileSystem(), (url.path if url.scheme == "file" else self.root).rstrip("/")


@dataclass(frozen=True)
class Target:
    """One table of the batch: the struct column holding its rows, its folder, its partitions."""

    column: str
    folder: str
    partition_by: tuple[str, ...]


def _hive(value: object) -> str:
    if value is None:
        return HIVE_NULL
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def split(table: pa.Table, keys: tuple[str, ...]) -> Iterator[tuple[str, pa.Table]]:
    """``(k1=v1/k2=v2, rows without the key columns)`` per distinct partition of ``table``."""
    import pyarrow.compute as pc

    for values in table.group_by(list(keys)).aggregate([]).to_pylist():
        mask = None
        for k, v in values.items():
            match = pc.is_null(table[k]) if v is None else pc.equal(table[k], v)
            mask = match if mask is None else pc.and_(mask, match)
        folder = "/".join(f"{k}={_hive(values[k])}" for k in keys)
        yield folder, table.filter(mask).drop_columns(list(keys))


@dataclass(frozen=True)
class Written(WriterCommitMessage):
    """What one task wrote: the files (folders included in their paths)."""

    files: tuple[str, ...]


class BatchFilesWriter(DataSourceArrowWriter):
    """Tasks write their Parquet files; the commit, on the driver, removes strays."""

    def __init__(self, store: Store, targets: tuple[Target, ...]) -> None:
        self.store = store
        self.targets = targets

    def write(self, iterator: Iterator[pa.RecordBatch]) -> Written:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pyarrow.fs import LocalFileSystem
        from pyspark import TaskContext

        chunks: dict[str, list[pa.Table]] = {t.column: [] for t in self.targets}
        for batch in iterator:
            for t in self.targets:
                rows = batch.column(t.column)
                rows = rows.filter(rows.is_valid())
                if len(rows):
                    chunks[t.column].append(pa.Table.from_struct_array(rows))
        fs, base = self.store.filesystem()
        name = f"part-{TaskContext.get().partitionId():05d}.parquet"  # type: ignore[union-attr]
        files = []
        for t in self.targets:
            if not chunks[t.column]:
                continue
            for partition, part in split(pa.concat_tables(chunks[t.column]), t.partition_by):
                folder = f"{base}/{t.folder}/{partition}"
                if isinstance(fs, LocalFileSystem):  # S3 has no folders to make
                    fs.create_dir(folder)
                # INT96 timestamps, as Spark's own writer stores them, so a lake written before
                # this writer existed stays one schema for pyarrow readers and Athena.
                pq.write_table(
                    part, f"{folder}/{name}", filesystem=fs, use_deprecated_int96_timestamps=True
                )
                files.append(f"{folder}/{name}")
        return Written(tuple(files))

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        written = {f for m in messages if isinstance(m, Written) for f in m.files}
        remove_strays(self.store, {f.rsplit("/", 1)[0] for f in written}, written)


class BatchFiles(DataSource):
    """``frame.write.format("cityfleet_batch_files")``: options ``store`` and ``targets``."""

    @classmethod
    def name(cls) -> str:
        return "cityfleet_batch_files"

    def writer(self, schema: StructType, overwrite: bool) -> BatchFilesWriter:
        store = Store(**json.loads(self.options["store"]))
        targets = tuple(Target(c, f, tuple(p)) for c, f, p in json.loads(self.options["targets"]))
        return BatchFilesWriter(store, targets)


def write_batch(frame: DataFrame, store: Store, targets: tuple[Target, ...]) -> dict[str, int]:
    """Write every target of ``frame`` in one Spark job; return the rows per target column.

    The counts are observed on the same job (no second pass over the batch).
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    frame.sparkSession.dataSource.register(BatchFiles)
    rows = Observation("rows")
    (
        frame.observe(rows, *(F.count(t.column).alias(t.column) for t in targets))
        .write.format(BatchFiles.name())
        .mode("append")
        .option("store", json.dumps(asdict(store)))
        .option("targets", json.dumps([astuple(t) for t in targets]))
        .save()
    )
    return {k: int(v) for k, v in rows.get.items()}


def remove_strays(store: Store, folders: Iterable[str], keep: set[str]) -> list[str]:
    """Delete the files in ``folders`` not in ``keep``: a killed attempt's, under other names."""
    from pyarrow import fs as pafs

    fs, _ = store.filesystem()
    removed = []
    for folder in sorted(folders):
        for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
            if info.type == pafs.FileType.File and info.path not in keep:
                fs.delete_file(info.path)
                removed.append(info.path)
    return removed

"""Reading the lake's Delta tables without a JVM: delta-rs (``deltalake``) into pyarrow.

The audit, the demo's live counts and the fault drill read the lake through this, so none of
them starts a Spark session. delta-rs reads the transaction log itself, so a reader sees whole
commits only, exactly as Spark does. What the pyarrow path of delta-rs 1.6 cannot read, and
the streaming job must therefore not enable on a table: deletion vectors, column mapping and
any other reader feature but ``timestampNtz``/``variantType`` (``DeltaProtocolError``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, DeltaProtocolError, TableNotFoundError

from cityconf.errors import UserError
from cityconf.keys import value
from contract import DATA_STREAMS, Stream
from spark.lake import Lake, Table, default_root, silver


def storage_options(env: Mapping[str, str]) -> dict[str, str]:
    """delta-rs's object-store settings for the S3 server in ``env`` (path style, plain HTTP)."""
    endpoint = env.get("S3_ENDPOINT_URL", "")
    options = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": value(env, "AWS_REGION"),
        "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", ""),
        "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", ""),
        # versitygw serves buckets by path, not as <bucket>.<host> virtual hosts.
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
    }
    if endpoint.startswith("http://"):
        options["AWS_ALLOW_HTTP"] = "true"
    return {k: v for k, v in options.items() if v}


@dataclass
class LakeReader:
    """The Delta tables of one lake root, opened lazily and kept open for cheap refreshes."""

    lake: Lake
    options: dict[str, str] = field(default_factory=dict)
    _open: dict[str, DeltaTable] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str], root: str | None = None) -> LakeReader:
        root = default_root(env, root)
        local = not root.startswith(("s3a://", "s3://"))
        return cls(Lake(root), {} if local else storage_options(env))

    def table(self, table: Table, refresh: bool = False) -> DeltaTable | None:
        """The table at its newest version, or None while no commit has created it yet."""
        opened = self._open.get(table.path)
        if opened is not None:
            if refresh:
                opened.update_incremental()
            return opened
        try:
            opened = DeltaTable(self.lake.object_uri(table), storage_options=self.options)
        except TableNotFoundError:
            return None
        except (DeltaError, OSError) as exc:
            raise self._unreachable(exc) from None
        self._open[table.path] = opened
        return opened

    def read(self, table: Table, columns: Iterable[str]) -> pa.Table | None:
        """The named columns of every row (None if the table does not exist yet).

        A column the table lacks is an error naming the table: the writer changed its schema.
        """
        dt = self.table(table, refresh=True)
        if dt is None:
            return None
        wanted = list(columns)
        have = set(dt.schema().to_arrow().names)
        lacking = [c for c in wanted if c not in have]
        if lacking:
            raise UserError(
                f"{self.lake.uri(table)}: no column {', '.join(lacking)} "
                f"(has {', '.join(sorted(have))}); the lake was written by another version"
            )
        try:
            return dt.to_pyarrow_table(columns=wanted)
        except DeltaProtocolError as exc:
            raise UserError(
                f"{self.lake.uri(table)}: delta-rs cannot read this table ({exc}); "
                "the writer must not enable deletion vectors or column mapping"
            ) from None

    def rows(self, table: Table) -> int:
        """Rows in the table's newest version, from the log's per-file statistics (no data read)."""
        dt = self.table(table, refresh=True)
        if dt is None:
            return 0
        actions = pa.table(dt.get_add_actions(flatten=True))
        counts = actions.column("num_records")
        if counts.null_count:  # a file written without statistics: count its rows instead
            return dt.to_pyarrow_dataset().count_rows()
        return int(pc.sum(counts).as_py() or 0)

    def silver_rows(self, streams: tuple[Stream, ...] = DATA_STREAMS) -> dict[str, int]:
        """Per stream name, the rows its silver table holds now."""
        return {s.name: self.rows(silver(s)) for s in streams}

    def _unreachable(self, exc: Exception) -> UserError:
        where = self.options.get("AWS_ENDPOINT_URL") or self.lake.root
        return UserError(
            f"cannot read the lake at {self.lake.root} ({where}): {str(exc).splitlines()[0]}; "
            "is the S3 server running? start it with `make up` (`make status` shows it)"
        )

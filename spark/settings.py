"""Settings of the streaming job: built once from ``.env``/environment and flags, validated."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cityconf.errors import UserError
from cityconf.keys import integer
from cityconf.layout import Layout
from contract import ALL_STREAMS, DATA_STREAMS, DEAD_LETTER_TOPIC, STREAMS, Stream
from spark.lake import default_root

DEFAULT_LATE_AFTER_S = 600
"""Event-time lag behind the stream's newest event that counts as late, on a real-time clock."""

INTERVAL_RE = re.compile(
    r"^\s*(\d+(\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?)\s*$"
)
_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours"}


def seconds(text: str, flag: str) -> int:
    """'5 minutes' → 300 (whole seconds); UserError on anything else."""
    amount, unit = interval(text, flag).split()
    scale = {"milliseconds": 0.001, "seconds": 1, "minutes": 60, "hours": 3600}[unit]
    return round(float(amount) * scale)


WRITE_THREADS = 6
"""A batch's tables written at once: bronze and the five silver tables. Each write spends
much of its time waiting (Delta rebuilding the table's snapshot for the txnAppId check, S3
requests, the commit), so more writes than cores overlap: six tables of 12k rows took
3.7-4.5 s with six threads against 4.4-6.3 s with two, on two cores."""


def cores() -> int:
    """Cores of a local master (``local[N]``/``local[*]``), the unit of parallelism here."""
    return os.cpu_count() or 2


def interval(text: str, flag: str) -> str:
    """'10 seconds', '10s', '2 minutes' → Spark's form ('10 seconds'); UserError otherwise."""
    m = INTERVAL_RE.match(text)
    if not m:
        raise UserError(
            f"{flag} {text!r}: expected a duration such as '10 seconds', '500 ms' or '10 minutes'",
            exit_code=2,
        )
    unit = m.group(3)
    unit = _UNITS.get(unit, unit if unit.endswith("s") else unit + "s")
    unit = {"secs": "seconds", "mins": "minutes"}.get(unit, unit)
    return f"{m.group(1)} {unit}"


def query_checkpoint(root: str | Path) -> str:
    """``<root>/lake``: the streaming query's checkpoint (commits/, offsets/, metadata)."""
    return f"{str(root).rstrip('/')}/lake"


def select_streams(names: str) -> tuple[Stream, ...]:
    """'all' (with device_status), 'data' (the five data streams) or a list of names/topics."""
    if names == "data":
        return DATA_STREAMS
    if names == "all":
        return ALL_STREAMS
    by_topic = {s.kafka_topic: s for s in ALL_STREAMS}
    chosen = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        stream = STREAMS.get(name) or by_topic.get(name)
        if stream is None:
            known = ", ".join(s.name for s in ALL_STREAMS)
            raise UserError(f"--streams: unknown stream {name!r} (known: {known})", exit_code=2)
        chosen.append(stream)
    return tuple(chosen)


@dataclass(frozen=True)
class StreamSettings:
    bootstrap_servers: str
    streams: tuple[Stream, ...]
    topic_prefix: str
    output_root: str
    checkpoint: str
    trigger: str
    late_after_s: int
    max_skew_s: int
    available_now: bool
    starting_offsets: str
    max_offsets_per_trigger: int | None
    shuffle_partitions: int
    write_threads: int
    master: str | None

    def topic(self, stream: Stream) -> str:
        return f"{self.topic_prefix}{stream.kafka_topic}"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}{DEAD_LETTER_TOPIC}"

    @property
    def query_checkpoint(self) -> str:
        """The one streaming query's checkpoint, under the checkpoint root."""
        return query_checkpoint(self.checkpoint)

    @property
    def resumes(self) -> bool:
        """Whether the query resumes from its checkpoint's offsets (Spark then ignores
        ``starting_offsets``); a checkpoint on a remote filesystem counts as new."""
        return Path(self.query_checkpoint, "offsets").is_dir()

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str]) -> StreamSettings:
        bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            raise UserError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: run `make up` (it writes .env)", exit_code=2
            )
        checkpoint = args.checkpoint or str(Layout.from_env(env).stream_checkpoint)
        if "://" not in checkpoint:
            checkpoint = str(Path(checkpoint).resolve())
        return cls(
            bootstrap_servers=bootstrap,
            streams=select_streams(args.streams),
            topic_prefix=args.topic_prefix,
            output_root=default_root(env, args.output_root),
            checkpoint=checkpoint,
            trigger=interval(args.trigger, "--trigger"),
            late_after_s=seconds(args.late_after, "--late-after"),
            max_skew_s=seconds(args.max_skew, "--max-skew"),
            available_now=args.available_now,
            starting_offsets=starting_offsets(args.starting_offsets),
            max_offsets_per_trigger=args.max_offsets_per_trigger,
            shuffle_partitions=args.shuffle_partitions
            or integer(env, "SPARK_SHUFFLE_PARTITIONS", low=1),
            write_threads=args.write_threads or WRITE_THREADS,
            master=args.master,
        )


def starting_offsets(text: str) -> str:
    """``earliest``, ``latest``, or Kafka offsets per topic partition as Spark's JSON
    (``{"vehicle_data": {"0": 42, "1": -2}}``, -2 for earliest, -1 for latest); UserError on
    anything else. A run that records where the topics end before it starts publishing (a
    fault drill) starts the query there, without waiting for it to start first."""
    if text in ("earliest", "latest"):
        return text
    try:
        spec = json.loads(text)
    except ValueError:
        spec = None

    def offset(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= -2

    if not (
        isinstance(spec, dict)
        and spec
        and all(
            isinstance(parts, dict)
            and parts
            and all(p.isdigit() and offset(o) for p, o in parts.items())
            for parts in spec.values()
        )
    ):
        raise UserError(
            f"--starting-offsets {text!r}: use earliest, latest, or JSON offsets per topic "
            """partition such as '{"vehicle_data": {"0": 42, "1": -2}}' (-2 earliest, -1 """
            "latest)",
            exit_code=2,
        )
    return text


def check_offsets_cover(text: str, partitions: Mapping[str, Iterable[int]]) -> None:
    """JSON starting offsets must name exactly the partitions the query reads (Spark refuses
    anything else, with a stack trace); ``partitions``: each topic read → its partitions."""
    if not text.startswith("{"):
        return
    given = {(t, int(p)) for t, parts in json.loads(text).items() for p in parts}
    wanted = {(t, p) for t, parts in partitions.items() for p in parts}
    if given != wanted:

        def listed(pairs: set[tuple[str, int]]) -> str:
            by_topic: dict[str, list[int]] = {}
            for t, p in sorted(pairs):
                by_topic.setdefault(t, []).append(p)
            return "; ".join(f"{t} {','.join(map(str, ps))}" for t, ps in by_topic.items())

        raise UserError(
            f"--starting-offsets must give every partition the query reads, no other: "
            f"missing partitions: {listed(wanted - given) or 'none'}; not read: "
            f"{listed(given - wanted) or 'none'}",
            exit_code=2,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--streams",
        default="data",
        help="'data' (the five data streams, default), 'all' (adds device_status) "
        "or a comma-separated list of stream names or topics",
    )
    parser.add_argument(
        "--topic-prefix",
        default="",
        help="read <prefix><topic> instead of <topic>; tables keep the contract topic name",
    )
    parser.add_argument("--output-root", help="lake root (default s3a://$S3_BUCKET/)")
    parser.add_argument(
        "--checkpoint",
        help="checkpoint root; the query's checkpoint is its lake/ folder (default "
        "$CITYFLEET_STATE_DIR/checkpoints/stream, that is .cityfleet/checkpoints/stream)",
    )
    parser.add_argument("--trigger", default="10 seconds", help="micro-batch interval")
    parser.add_argument(
        "--late-after",
        default=f"{DEFAULT_LATE_AFTER_S} seconds",
        help="a row this far (event time) behind its stream's newest is recorded in late/ "
        "(it lands in silver all the same)",
    )
    parser.add_argument(
        "--max-skew",
        default="5 minutes",
        help="a row whose event time is this far ahead of its Kafka timestamp is quarantined "
        "(future_timestamp)",
    )
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="process what is in Kafka now, then exit (tests, demos, backfills)",
    )
    parser.add_argument(
        "--starting-offsets",
        default="earliest",
        help="where a NEW checkpoint starts: earliest (default), latest, or JSON offsets "
        """per topic partition, as Spark's startingOffsets ('{"vehicle_data": {"0": 42}}'; """
        "every partition of every topic read)",
    )
    parser.add_argument(
        "--max-offsets-per-trigger",
        type=int,
        help="cap on Kafka records per micro-batch, all topics together",
    )
    parser.add_argument(
        "--shuffle-partitions",
        type=int,
        help="Spark shuffle partitions (default: $SPARK_SHUFFLE_PARTITIONS, else the cores)",
    )
    parser.add_argument(
        "--write-threads",
        type=int,
        help=f"Delta tables written at once in a micro-batch (default: {WRITE_THREADS})",
    )
    parser.add_argument("--master", help="Spark master (default: local[2] or spark-submit's)")

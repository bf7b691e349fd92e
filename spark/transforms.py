"""Pure DataFrame → DataFrame transforms of the streaming job; no sources, sinks or sessions.

``parse`` reads each Kafka record of every stream topic once, into one wide frame: the Kafka
columns, ``stream`` (which stream's topic it came from), ``checked`` (the contract certainly
holds), ``problem`` (what the pipeline itself refuses: a Kafka key that is not the device, an
event time from the future, a time Spark cannot place) and one struct of typed silver columns
per stream (null on other streams' rows).

``checked`` is the contract's own compiled check (``contract.checks``) translated into column
expressions, built from the contract's fields: the payload is compact JSON whose members are
exactly the stream's fields with the right JSON types, and every value is within its bounds and
choices, the UUID in canonical form, the timestamp in the contract's format. Like the compiled
check it may refuse a valid message, never accept an invalid one; the few records it refuses
are then judged by ``contract.decode_payload`` itself (``spark.validation``), which has the last
word, exactly as in the bridge. So Spark's verdict is the contract's, and its quarantine reasons
are the bridge's dead-letter reasons. No Python UDF touches a checked row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contract import MAX_PAYLOAD_BYTES, Field, FieldType, Stream
from contract.checks import TIMESTAMP_RE, UUID_RE
from spark.schema import (
    CORRUPT_COLUMN,
    EVENT_TIME,
    LINEAGE,
    json_schema,
)

KAFKA_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp", "timestampType")
TS_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSX"

# Compact JSON (what orjson, and so every device and the bridge, writes), possessive so a long
# payload cannot make the regex backtrack. Strings: no control characters, the JSON escapes, and
# no \u escape of a surrogate (orjson refuses a lone one; a pair is simply left to the contract).
# Unrolled (runs of plain characters, then one escape at a time) so Java's regex engine recurses
# once per escape, not once per character: a 64 KiB data: URI would overflow the stack.
_CHARS = r'[^"\\\x00-\x1f]*+'
_STR = rf'"{_CHARS}(?:\\(?:["\\/bfnrt]|u(?![dD][89abAB])[0-9a-fA-F]{{4}}){_CHARS})*+"'
_NUM = r"-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?[0-9]++)?+"
_TOKENS = {
    FieldType.STRING: _STR,
    FieldType.UUID: _STR,
    FieldType.TIMESTAMP: _STR,
    FieldType.INT: _NUM,
    FieldType.FLOAT: _NUM,
    FieldType.BOOL: "(?:true|false)",
}


def shape_regex(stream: Stream) -> str:
    """Compact JSON with exactly ``len(stream.fields)`` members, each a field of the stream
    with a token of its JSON type (or null where nullable), in any order."""
    groups: dict[str, list[str]] = {}
    for f in stream.fields:
        token = _TOKENS[f.type] + ("|null" if f.nullable else "")
        groups.setdefault(token, []).append(re.escape(f.name))
    member = "(?:" + "|".join(f'"(?:{"|".join(names)})":(?:{t})' for t, names in groups.items())
    member += ")"
    return rf"^\{{{member}(?:,{member}){{{len(stream.fields) - 1}}}\}}$"


def _field_ok(field: Field, p: str) -> Column:
    """True when the parsed value meets every rule the contract states for ``field``."""
    c = F.col(f"{p}.{field.name}")
    rules: list[Column] = []
    if field.type is FieldType.FLOAT:
        # Spark reads NaN and Infinity (JSON has neither; orjson refuses them).
        rules.append(~F.isnan(c) & (F.abs(c) != F.lit(float("inf"))))
    if field.type is FieldType.TIMESTAMP:
        rules.append(c.rlike(TIMESTAMP_RE.pattern))
    if field.type is FieldType.UUID:
        rules.append(c.rlike(UUID_RE.pattern))
    if field.minimum is not None:
        rules.append(c >= F.lit(field.minimum))
    if field.maximum is not None:
        rules.append(c <= F.lit(field.maximum))
    if field.choices is not None:
        rules.append(c.isin(*field.choices))
    ok = F.lit(True)
    for rule in rules:
        ok = ok & rule
    if field.nullable:
        return c.isNull() | ok
    return c.isNotNull() & ok


def fast_check(stream: Stream, text: Column, p: str) -> Column:
    """The contract's compiled check as columns: True only when ``text`` is certainly valid.

    The shape regex rules out unknown, missing-and-duplicated and wrongly typed members (a JSON
    number where a string belongs, which ``from_json`` would quietly turn into text); a
    nullable field must also be present by name, since ``from_json`` cannot tell missing from
    null. ``from_json`` (its result in column ``p``) then types the values and the field rules
    check them.
    """
    ok = (
        F.is_valid_utf8(text)
        & (F.octet_length(text) <= F.lit(MAX_PAYLOAD_BYTES))
        & text.rlike(shape_regex(stream))
        & F.col(f"{p}.{CORRUPT_COLUMN}").isNull()
    )
    for f in stream.fields:
        if f.nullable:
            ok = ok & text.contains(f'"{f.name}":')
        ok = ok & _field_ok(f, p)
    return F.coalesce(ok, F.lit(False))


def _event_time(p: str) -> Column:
    return F.try_to_timestamp(F.col(f"{p}.{EVENT_TIME}"), F.lit(TS_FORMAT))


def _problem(p: str, t: str, max_skew_s: int) -> Column:
    """What the pipeline refuses in a record the contract accepts, as a one-line reason."""
    device = F.col(f"{p}.device_id")
    key = F.col("key").cast("string")
    text = F.col(f"{p}.{EVENT_TIME}")
    event = F.col(t)
    ahead = F.col("timestamp") + F.make_dt_interval(F.lit(0), F.lit(0), F.lit(0), F.lit(max_skew_s))
    return (
        F.when(
            key.isNotNull() & device.isNotNull() & (key != device),
            F.concat(
                F.lit("key_mismatch: Kafka key '"),
                key,
                F.lit("' != device_id '"),
                device,
                F.lit("'"),
            ),
        )
        .when(
            text.isNotNull() & event.isNull(),
            F.concat(F.lit("bad_timestamp: "), text, F.lit(" is no instant")),
        )
        .when(
            event > ahead,
            F.concat(
                F.lit("future_timestamp: "),
                text,
                F.lit(f" is more than {max_skew_s} s ahead of its Kafka timestamp "),
                F.date_format("timestamp", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"),
            ),
        )
    )


def _typed(stream: Stream, p: str, t: str) -> Column:
    """The stream's silver columns (contract fields typed, Kafka lineage) as one struct."""
    fields = []
    for f in stream.fields:
        value = F.col(t) if f.type is FieldType.TIMESTAMP else F.col(f"{p}.{f.name}")
        fields.append(value.alias(f.name))
    lineage = [
        F.col("partition").cast(LINEAGE["kafka_partition"].dataType).alias("kafka_partition"),
        F.col("offset").cast(LINEAGE["kafka_offset"].dataType).alias("kafka_offset"),
        F.col("timestamp").cast(LINEAGE["kafka_timestamp"].dataType).alias("kafka_timestamp"),
    ]
    return F.struct(*fields, *lineage)


def struct_column(stream: Stream) -> str:
    """The wide frame's column holding ``stream``'s typed rows."""
    return f"_{stream.name}"


class Parser:
    """``parse`` for a streaming job: the column expressions are built once, not every batch.

    Building them is a few thousand py4j calls from Python (every ``F.when``, ``F.col`` and
    ``&``): measured on the 2-core machine kind, 1-1.7 s for one stream and 5-7 s for all six,
    which a 2 s trigger paid on every micro-batch. Unresolved column expressions are bound to
    each batch's frame by ``select``, so the same ones serve every batch.
    """

    def __init__(self, topics: Mapping[str, Stream], max_skew_s: int) -> None:
        self.topics = dict(topics)
        self.max_skew_s = max_skew_s
        self._built: dict[tuple[str, ...], _Columns] = {}

    def __call__(self, kafka: DataFrame) -> DataFrame:
        columns = tuple(kafka.columns)
        if columns not in self._built:
            self._built[columns] = _parse_columns(columns, self.topics, self.max_skew_s)
        built = self._built[columns]
        return kafka.withColumns(built.parsed).withColumns(built.times).select(*built.selected)


def parse(kafka: DataFrame, topics: Mapping[str, Stream], max_skew_s: int) -> DataFrame:
    """Kafka records of the stream ``topics`` → one wide frame, each value parsed once."""
    return Parser(topics, max_skew_s)(kafka)


class _Columns(NamedTuple):
    """The three projections of ``parse``, built once per query."""

    parsed: dict[str, Column]
    """Each stream's JSON, parsed (``_p_<stream>``), added to the Kafka columns."""
    times: dict[str, Column]
    """Each stream's event time, parsed from its JSON (``_t_<stream>``)."""
    selected: list[Column]
    """The wide frame's columns."""


def _parse_columns(
    columns: tuple[str, ...], topics: Mapping[str, Stream], max_skew_s: int
) -> _Columns:
    """The projections that turn a Kafka frame of ``columns`` into the wide frame.

    Each record is parsed only with its own stream's schema: a ``CASE`` on the topic picks it,
    and Spark evaluates only the branch taken. The JSON and the event time are each a column of
    their own projection, which Spark does not inline into the several expressions that read
    them (``CollapseProject`` keeps an expensive expression that is read more than once), so
    each is computed once a record: inside the ``CASE`` branches, subexpression elimination
    would not share them.
    """
    text = F.col("value").cast("string")
    out = [F.col(c) for c in KAFKA_COLUMNS if c in columns]
    if "headers" in columns:
        out.append(F.col("headers"))
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
    parsed: dict[str, Column] = {}
    times: dict[str, Column] = {}
    branches = []
    for name, stream in topics.items():
        p, t = f"_p_{stream.name}", f"_t_{stream.name}"
        is_it = F.col("topic") == F.lit(name)
        parsed[p] = F.when(is_it, F.from_json(text, json_schema(stream), options))
        times[t] = _event_time(p)
        branches.append((stream, is_it, p, t))
    stream_name = F.lit(None).cast("string")
    checked = F.lit(False)
    problem = F.lit(None).cast("string")
    for stream, is_it, p, t in branches:
        stream_name = F.when(is_it, F.lit(stream.name)).otherwise(stream_name)
        checked = F.when(is_it, fast_check(stream, text, p)).otherwise(checked)
        problem = F.when(is_it, _problem(p, t, max_skew_s)).otherwise(problem)
    device_id = F.lit(None).cast("string")
    seq = F.lit(None).cast("long")
    for stream, is_it, p, _ in branches:
        device_id = F.when(is_it, F.col(f"{p}.device_id")).otherwise(device_id)
        if stream.sequenced:
            seq = F.when(is_it, F.col(f"{p}.seq")).otherwise(seq)
    typed = [F.when(is_it, _typed(s, p, t)).alias(struct_column(s)) for s, is_it, p, t in branches]
    selected = [
        *out,
        stream_name.alias("stream"),
        checked.alias("checked"),
        problem.alias("problem"),
        device_id.alias("device_id"),
        seq.alias("seq"),
        *typed,
    ]
    return _Columns(parsed, times, selected)


# --- the lake's tables, cut from the wide frame (after spark.validation has set ``error``) ---


def valid() -> Column:
    """A record of a stream topic that the contract and the pipeline both accept."""
    return F.col("stream").isNotNull() & F.col("error").isNull()


def event_time(stream: Stream) -> Column:
    return F.col(f"{struct_column(stream)}.{EVENT_TIME}")


def bronze(frame: DataFrame) -> DataFrame:
    """Every record of a stream topic as it came, with the Kafka source's own column names."""
    cols = [F.col(c) for c in (*KAFKA_COLUMNS, "headers")]
    return frame.where(F.col("stream").isNotNull()).select(
        *cols, F.to_date("timestamp").alias("ingest_date")
    )


def quarantine(frame: DataFrame) -> DataFrame:
    """Records that break the contract or the clock guard: the payload as text and the reason."""
    return frame.where(F.col("stream").isNotNull() & F.col("error").isNotNull()).select(
        "topic",
        "partition",
        "offset",
        "timestamp",
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("string").alias("payload"),
        F.col("error").alias("reason"),
    )


def silver(frame: DataFrame, stream: Stream) -> DataFrame:
    """The stream's valid rows as silver columns, with the event-date partition column."""
    rows = frame.where(valid() & (F.col("stream") == F.lit(stream.name)))
    return rows.select(
        f"{struct_column(stream)}.*", F.to_date(event_time(stream)).alias("event_date")
    )


def late(frame: DataFrame, newest: Mapping[Stream, object], late_after_s: int) -> DataFrame:
    """A record of the valid rows more than ``late_after_s`` behind their stream's newest event.

    ``newest`` is each stream's newest event time (a ``datetime``) including this batch.
    """
    when = F.lit(None).cast("timestamp")
    newest_col = F.lit(None).cast("timestamp")
    for stream, ts in newest.items():
        is_it = F.col("stream") == F.lit(stream.name)
        when = F.when(is_it, event_time(stream)).otherwise(when)
        newest_col = F.when(is_it, F.lit(ts).cast("timestamp")).otherwise(newest_col)
    lateness = F.unix_micros(newest_col) - F.unix_micros(when)
    rows = frame.where(valid() & (lateness > F.lit(late_after_s * 1_000_000)))
    return rows.select(
        F.col("stream"),
        F.col("device_id"),
        F.col("seq"),
        when.alias("event_time"),
        F.col("timestamp").alias("kafka_timestamp"),
        newest_col.alias("newest_event_time"),
        (lateness / F.lit(1e6)).alias("lateness_s"),
    )


def _header(name: str) -> Column:
    """The first Kafka header called ``name``, as text."""
    found = F.filter(F.col("headers"), lambda h: h["key"] == F.lit(name))
    return F.try_element_at(found, F.lit(1))["value"].cast("string")


def dead_letters(kafka: DataFrame) -> DataFrame:
    """The bridge's dead letters: the record, and its reason headers as columns."""
    received = _header("received_at").try_cast("long")
    return kafka.select(
        "topic",
        "partition",
        "offset",
        "timestamp",
        F.col("key").cast("string").alias("key"),
        F.col("value").alias("payload"),
        _header("dlq_reason").alias("reason"),
        _header("dlq_detail").alias("detail"),
        _header("source_topic").alias("source_topic"),
        _header("bridge_id").alias("bridge_id"),
        F.timestamp_millis(received).alias("received_at"),
        F.col("headers"),
    )

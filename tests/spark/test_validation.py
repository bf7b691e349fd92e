"""Spark's verdict on a record is the contract's: the contract tests' mutated payloads go through
Spark's parse and check and through ``contract.validate``, and every verdict agrees.

A pure test: ``local_spark``, a plain local SparkSession with no Kafka and no S3.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pyspark.sql import SparkSession

from contract import ALL_STREAMS, Stream, validate
from spark import transforms, validation
from tests.contract.helpers import sample
from tests.contract.test_checks import mutants

KAFKA = (
    "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, "
    "timestampType int"
)
ARRIVED = datetime(2026, 11, 23, 8, 0, 1, tzinfo=UTC)


def odd_but_valid(stream: Stream) -> list[dict | bytes]:
    """Valid messages the fast check does not know (the contract has the last word)."""
    msg = sample(stream, "dev-1")
    spaced = orjson.dumps(msg, option=orjson.OPT_INDENT_2)
    reordered = dict(reversed(list(msg.items())))
    braced = [dict(msg, id="{" + msg["id"] + "}")] if "id" in msg else []
    # A long string (a camera's inlined data: URI): the regex must not recurse per character.
    strings = [f.name for f in stream.fields if f.type.value == "string" and not f.choices]
    long = [dict(msg, **{strings[-1]: "data:image/png;base64," + "A" * 60_000})]
    return [msg, spaced, reordered, *braced, *long]


def judge(spark: SparkSession, stream: Stream, payloads: list[bytes]) -> list[tuple[bool, str]]:
    topic = f"t_{stream.kafka_topic}"
    rows = [(None, p, topic, 0, i, ARRIVED, 0) for i, p in enumerate(payloads)]
    parsed = transforms.parse(spark.createDataFrame(rows, KAFKA), {topic: stream}, 10**8)
    judged = validation.judge(parsed).select("offset", "checked", "error").collect()
    by_offset = {r.offset: (r.checked, r.error) for r in judged}
    return [by_offset[i] for i in range(len(payloads))]


@pytest.mark.parametrize("stream", ALL_STREAMS, ids=lambda s: s.name)
def test_spark_gives_the_contracts_verdict_on_every_mutant(local_spark, stream: Stream) -> None:
    messages = [*mutants(stream, 1500), *odd_but_valid(stream)]
    payloads = [m if isinstance(m, bytes) else orjson.dumps(m) for m in messages]
    verdicts = judge(local_spark, stream, payloads)
    accepted = checked_fast = 0
    for payload, (checked, error) in zip(payloads, verdicts, strict=True):
        errors = validate(stream, orjson.loads(payload))
        assert (error is None) == (errors == []), (payload, error, errors)
        if checked:
            checked_fast += 1
            assert errors == [], payload  # the fast check is never looser than the contract
        if errors:
            assert error == "schema: " + "; ".join(errors)  # the bridge's own reason
        else:
            accepted += 1
    assert accepted >= 3 and checked_fast >= 1  # both sides and the fast path are exercised


def test_payloads_the_bridge_never_sends_are_judged_like_the_bridge() -> None:
    from contract import VEHICLE

    good = orjson.dumps(sample(VEHICLE, "dev-1"))
    assert validation.contract_reason(VEHICLE, b"dev-1", good) is None
    assert validation.contract_reason(VEHICLE, None, good) is None
    assert validation.contract_reason(VEHICLE, b"dev-2", good).startswith("key_mismatch: ")
    assert validation.contract_reason(VEHICLE, b"dev-1", b"{nope").startswith("invalid_json: ")
    assert validation.contract_reason(VEHICLE, b"dev-1", b"[1]").startswith("not_an_object: ")
    assert validation.contract_reason(VEHICLE, b"dev-1", None) == "invalid_json: no value"

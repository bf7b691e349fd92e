"""The contract's last word on the records Spark's fast check refused.

``spark.transforms.fast_check`` is the contract's compiled check as column expressions: it may
refuse a valid message (a UUID in braces, JSON with spaces), never accept an invalid one. The
records it refuses (normally none: the bridge has validated every record before Kafka) are
collected to the driver and judged by ``contract.decode_payload``, the bridge's own function,
so the verdict and the reason are the contract's. Then ``error`` is that reason, or for an
accepted record what the pipeline itself refuses (``problem``).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contract import STREAMS, ContractError, Stream, decode_payload

VERDICTS = "topic string, partition int, offset long, contract_error string"


def contract_reason(stream: Stream, key: bytes | None, payload: bytes | None) -> str | None:
    """``None`` when the contract accepts ``payload`` from the device ``key``; else the reason
    as the bridge names it (``schema: speed_kmh: 999.0 is above 300``)."""
    if payload is None:
        return "invalid_json: no value"
    device = bytes(key).decode("utf-8", "replace") if key is not None else None
    try:
        decode_payload(stream, device or "", bytes(payload))
    except ContractError as exc:
        if exc.reason == "device_mismatch" and device is None:
            return None  # no key to disagree with
        if exc.reason == "device_mismatch":
            return f"key_mismatch: {exc.detail}"
        return f"{exc.reason}: {exc.detail}"
    return None


def judge(frame: DataFrame) -> DataFrame:
    """``frame`` (from ``transforms.parse``) with ``error``: the contract's reason, else the
    pipeline's ``problem``; null for a valid record (and for records of other topics)."""
    refused = (
        frame.where(F.col("stream").isNotNull() & ~F.col("checked"))
        .select("topic", "partition", "offset", "key", "value", "stream")
        .collect()
    )
    if not refused:
        return frame.withColumn("error", F.col("problem"))
    verdicts = [
        (r.topic, r.partition, r.offset, contract_reason(STREAMS[r.stream], r.key, r.value))
        for r in refused
    ]
    table = frame.sparkSession.createDataFrame(verdicts, VERDICTS)
    joined = frame.join(F.broadcast(table), ["topic", "partition", "offset"], "left")
    return joined.withColumn("error", F.coalesce("contract_error", "problem")).drop(
        "contract_error"
    )

"""Each Kafka record is parsed once: its JSON and its event time are each computed once a record,
however many checks, reasons and silver columns read them.

A pure test on ``local_spark``: it reads the optimised plan of ``transforms.parse`` over every
stream topic, where a second ``from_json`` or ``try_to_timestamp`` of one stream would show.
"""

from __future__ import annotations

import re

from pyspark.sql import SparkSession

from contract import ALL_STREAMS
from spark import transforms
from tests.spark.test_validation import KAFKA


def optimised_plan(spark: SparkSession) -> str:
    kafka = spark.createDataFrame([], KAFKA)
    topics = {s.kafka_topic: s for s in ALL_STREAMS}
    parsed = transforms.parse(kafka, topics, max_skew_s=300)
    return parsed._jdf.queryExecution().optimizedPlan().toString()


def test_each_stream_parses_its_json_and_event_time_once(local_spark: SparkSession) -> None:
    plan = optimised_plan(local_spark)
    assert len(re.findall(r"\bfrom_json\(", plan)) == len(ALL_STREAMS), plan
    # try_to_timestamp, as the plan names it once the optimiser has rewritten it
    assert len(re.findall(r"\b(?:try_to_timestamp|gettimestamp)\(", plan)) == len(ALL_STREAMS)

"""Where a new checkpoint starts: earliest, latest or offsets per partition, checked at the
edge (a one-line error, exit code 2) and against the partitions the query reads."""

from __future__ import annotations

import argparse
import json

import pytest

from cityconf.errors import BAD_INPUT, UserError
from spark.settings import StreamSettings, add_arguments, check_offsets_cover

ENV = {"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "S3_BUCKET": "lake"}


def starting(text: str) -> str:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--starting-offsets", text])
    return StreamSettings.from_args(args, ENV).starting_offsets


def test_offsets_per_partition_are_taken_as_spark_reads_them() -> None:
    assert starting("latest") == "latest"
    spec = json.dumps({"vehicle_data": {"0": 42, "1": -2}, "dead_letter": {"0": -1}})
    assert json.loads(starting(spec)) == json.loads(spec)


@pytest.mark.parametrize(
    "text",
    ["newest", "{}", '{"vehicle_data": {}}', '{"vehicle_data": {"x": 1}}',
     '{"vehicle_data": {"0": -3}}', '{"vehicle_data": {"0": true}}', '{"vehicle_data": 5}',
     "[1]", "{not json"],
)  # fmt: skip
def test_anything_else_is_one_line_naming_the_flag(text: str) -> None:
    with pytest.raises(UserError) as err:
        starting(text)
    message = str(err.value)
    assert err.value.exit_code == BAD_INPUT and "\n" not in message
    assert message.startswith("--starting-offsets") and "earliest" in message


def test_offsets_must_cover_exactly_the_partitions_read() -> None:
    read = {"vehicle_data": [0, 1], "dead_letter": [0]}
    check_offsets_cover("earliest", read)
    check_offsets_cover('{"vehicle_data": {"0": 5, "1": 7}, "dead_letter": {"0": 0}}', read)
    with pytest.raises(UserError) as err:
        check_offsets_cover('{"vehicle_data": {"0": 5}, "gps_data": {"0": 1}}', read)
    assert err.value.exit_code == BAD_INPUT
    message = str(err.value)
    assert "missing partitions: dead_letter 0; vehicle_data 1; not read: gps_data 0" in message


def test_a_checkpoint_with_offsets_resumes(tmp_path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = StreamSettings.from_args(parser.parse_args(["--checkpoint", str(tmp_path)]), ENV)
    assert not settings.resumes
    (tmp_path / "lake" / "offsets").mkdir(parents=True)
    assert settings.resumes

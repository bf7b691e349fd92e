"""One table of configuration keys: the README's table is generated from it, and components take
their defaults from it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cityconf import keys
from cityconf.docs import render
from cityconf.errors import BAD_INPUT, UserError
from cityconf.layout import Layout
from spark.settings import StreamSettings, add_arguments
from tests.readme import generated_section


def test_readme_configuration_table_is_generated_from_the_keys() -> None:
    assert generated_section("config") == render(), "README is stale: run `python -m cityconf.docs`"


def test_each_key_is_in_the_table_once() -> None:
    names = [k.name for k in keys.KEYS]
    assert len(names) == len(set(names))
    assert keys.BY_NAME["S3_BUCKET"].default == "cityfleet"
    assert keys.BY_NAME["AWS_REGION"].default == "us-east-1"
    assert keys.BY_NAME["KAFKA_BOOTSTRAP_SERVERS"].default == "127.0.0.1:9092"


def test_value_is_the_environment_else_the_default() -> None:
    assert keys.value({}, "S3_BUCKET") == "cityfleet"
    assert keys.value({"S3_BUCKET": ""}, "S3_BUCKET") == "cityfleet"
    assert keys.value({"S3_BUCKET": "lake"}, "S3_BUCKET") == "lake"
    assert keys.value({}, "LIVE_TILE_URL") == ""
    with pytest.raises(KeyError):
        keys.value({}, "NOT_A_KEY")


def test_integer_settings_are_checked() -> None:
    assert keys.integer({"SPARK_SHUFFLE_PARTITIONS": "8"}, "SPARK_SHUFFLE_PARTITIONS", low=1) == 8
    with pytest.raises(UserError, match="SPARK_SHUFFLE_PARTITIONS='many'") as err:
        keys.integer({"SPARK_SHUFFLE_PARTITIONS": "many"}, "SPARK_SHUFFLE_PARTITIONS", low=1)
    assert err.value.exit_code == BAD_INPUT and "\n" not in str(err.value)


def _stream_settings(env: dict[str, str], *argv: str) -> StreamSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return StreamSettings.from_args(parser.parse_args(list(argv)), env)


def test_the_stream_takes_its_shuffle_partitions_and_checkpoint_from_the_table(
    tmp_path: Path,
) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
        "S3_BUCKET": "lake",
        "CITYFLEET_STATE_DIR": str(tmp_path),
    }
    assert _stream_settings({**env, "SPARK_SHUFFLE_PARTITIONS": "3"}).shuffle_partitions == 3
    assert _stream_settings(env).shuffle_partitions == int(
        keys.default("SPARK_SHUFFLE_PARTITIONS") or 0
    )
    given = _stream_settings({**env, "SPARK_SHUFFLE_PARTITIONS": "3"}, "--shuffle-partitions", "5")
    assert given.shuffle_partitions == 5
    assert _stream_settings(env).checkpoint == str(Layout.from_env(env).stream_checkpoint)


def test_layout_names_the_components_folders(tmp_path: Path) -> None:
    layout = Layout.from_env({"CITYFLEET_STATE_DIR": str(tmp_path)})
    assert layout.devices == tmp_path.resolve() / "devices"
    assert layout.stream_checkpoint == tmp_path.resolve() / "checkpoints" / "stream"
    assert layout.tools == tmp_path.resolve() / "tools"

"""Unit tests of the stack's pure parts: settings, credentials, topics, Spark session config."""

from __future__ import annotations

import pytest

from cityconf.errors import UserError
from contract import DATA_STREAMS, KAFKA_TOPICS
from spark.session import session_conf, submit_args
from stack.credentials import MQTT_USERS, Credentials
from stack.kafka import DATA_TOPIC_PARTITIONS, topic_partitions
from stack.settings import DEFAULT_PORTS, StackSettings


@pytest.fixture
def spark_env(tmp_path):
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in ("b.jar", "a.jar", "notes.txt"):
        (jars / name).write_text("")
    return {
        "SPARK_JARS_DIR": str(jars),
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "us-east-1",
    }


def test_session_conf_uses_local_jars_and_s3a_settings(spark_env):
    conf = session_conf("app", spark_env)
    jars = spark_env["SPARK_JARS_DIR"]
    assert conf["spark.jars"] == f"{jars}/a.jar,{jars}/b.jar"
    assert conf["spark.master"] == "local[2]"
    assert conf["spark.driver.host"] == "127.0.0.1"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.access.key"] == "key"
    assert "spark.jars.packages" not in conf


def test_session_conf_master_from_env_and_extra_conf_wins(spark_env):
    conf = session_conf(
        "app",
        {**spark_env, "SPARK_MASTER": "spark://10.0.0.5:7077"},
        extra_conf={"spark.sql.shuffle.partitions": "16"},
    )
    assert conf["spark.master"] == "spark://10.0.0.5:7077"
    assert "spark.driver.host" not in conf
    assert conf["spark.sql.shuffle.partitions"] == "16"
    assert session_conf("app", spark_env, master="local[1]")["spark.master"] == "local[1]"


def test_submit_args_name_the_jars(spark_env):
    args = submit_args(spark_env)
    assert args[0] == "--jars" and args[1].endswith("b.jar")
    assert "spark.hadoop.fs.s3a.path.style.access=true" in args


def test_missing_jars_or_endpoint_say_run_make_up(spark_env, tmp_path):
    with pytest.raises(UserError, match="make up"):
        session_conf("app", {**spark_env, "SPARK_JARS_DIR": str(tmp_path / "none")})
    with pytest.raises(UserError, match="S3_ENDPOINT_URL"):
        session_conf("app", {k: v for k, v in spark_env.items() if k != "S3_ENDPOINT_URL"})


def test_settings_defaults_and_port_overrides(tmp_path):
    settings = StackSettings.from_env({"CITYFLEET_STATE_DIR": str(tmp_path)})
    assert settings.mqtt_port == DEFAULT_PORTS["MQTT_PORT"] == 1883
    assert settings.layout.root == tmp_path.resolve()
    assert settings.bucket == "cityfleet"
    assert StackSettings.from_env({"S3_PORT": "9100"}).s3_port == 9100


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1"])
def test_bad_port_is_bad_input(value):
    with pytest.raises(UserError, match="KAFKA_PORT") as err:
        StackSettings.from_env({"KAFKA_PORT": value})
    assert err.value.exit_code == 2


def test_two_services_on_one_port_is_refused():
    with pytest.raises(UserError, match="share a port"):
        StackSettings.from_env({"S3_PORT": "1883"})


def test_credentials_are_generated_once(tmp_path):
    path = tmp_path / "credentials.json"
    first = Credentials.load_or_create(path)
    assert set(first.mqtt) == set(MQTT_USERS)
    assert len(set(first.mqtt.values())) == len(MQTT_USERS)
    assert Credentials.load_or_create(path) == first
    assert path.stat().st_mode & 0o077 == 0


def test_every_contract_topic_has_partitions():
    partitions = topic_partitions()
    assert set(partitions) == set(KAFKA_TOPICS)
    for stream in DATA_STREAMS:
        assert partitions[stream.kafka_topic] == DATA_TOPIC_PARTITIONS
    assert all(n >= 3 for n in partitions.values())

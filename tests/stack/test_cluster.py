"""The cluster topology: three KRaft brokers and a Spark standalone cluster, by configuration.

The unit tests check what `make up TOPOLOGY=cluster` derives (ports, quorum, `.env`); the
integration test brings a whole cluster topology up in a folder of its own, runs a scenario
through the three brokers and the Spark standalone cluster into silver while it kills the
broker leading the most partitions (then restarts it) and a Spark worker, and the audit must
find every published message in silver exactly once.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityconf.errors import UserError
from cityconf.layout import Layout
from stack.cluster import BROKERS, ClusterBroker, ClusterPorts, KafkaCluster, topology
from stack.core import Services
from stack.process import port_free

_TAKEN: set[int] = set()


def _free_block(size: int) -> int:
    """A port p with p .. p+size-1 all free (the brokers take KAFKA_PORT + 0, 2, 4).

    Above Linux's ephemeral range (32768-60999): a port from inside it can be taken by some
    outgoing connection between this check and the server's bind, as a broker found out.
    """
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(61000, 65535 - size)
        block = set(range(base, base + size))
        if not block & _TAKEN and all(port_free(p) for p in block):
            _TAKEN.update(block)
            return base
    raise RuntimeError("no block of free ports above the ephemeral range")


def _cluster_env(home: Path) -> dict[str, str]:
    kafka = _free_block(2 * BROKERS)
    workers = _free_block(2)
    return {
        "CITYFLEET_STATE_DIR": str(home),
        "CITYFLEET_TOOLS_DIR": str(Layout.from_env(os.environ).tools),
        "CITYFLEET_ENV_FILE": str(home / ".env"),
        "CITYFLEET_TOPOLOGY": "cluster",
        "MQTT_PORT": str(_free_block(1)),
        "MQTT_TLS_PORT": str(_free_block(1)),
        "MQTT_WS_PORT": str(_free_block(1)),
        "KAFKA_PORT": str(kafka),
        "KAFKA_CONTROLLER_PORT": str(kafka + 1),
        "S3_PORT": str(_free_block(1)),
        "SPARK_MASTER_PORT": str(_free_block(1)),
        "SPARK_MASTER_WEBUI_PORT": str(_free_block(1)),
        "SPARK_WORKER_WEBUI_PORT": str(workers),
        "SPARK_UI_PORT": str(_free_block(1)),
    }


def test_topology_is_single_unless_asked() -> None:
    assert topology({}) == "single"
    assert topology({"CITYFLEET_TOPOLOGY": "cluster"}) == "cluster"
    with pytest.raises(UserError) as err:
        topology({"CITYFLEET_TOPOLOGY": "swarm"})
    assert err.value.exit_code == 2 and "TOPOLOGY=cluster" in str(err.value)


def test_ports_follow_from_the_single_topology() -> None:
    ports = ClusterPorts.from_env({}, 9092, 9093)
    assert ports.brokers == ((9092, 9093), (9094, 9095), (9096, 9097))
    assert (ports.master, ports.master_webui, ports.worker_webui) == (7077, 8080, (8081, 8082))
    with pytest.raises(UserError) as err:  # controller on KAFKA_PORT + 2: broker 2's port
        ClusterPorts.from_env({}, 9092, 9094)
    assert err.value.exit_code == 2
    with pytest.raises(UserError):
        ClusterPorts.from_env({"SPARK_MASTER_PORT": "x"}, 9092, 9093)


def test_three_brokers_are_one_quorum_apart_on_disk(tmp_path: Path) -> None:
    layout = Layout.at(tmp_path)
    cluster = KafkaCluster(layout, ClusterPorts.from_env({}, 9092, 9093))
    names = [b.name for b in cluster.brokers]
    assert names == ["kafka-1", "kafka-2", "kafka-3"]
    assert {b.voters() for b in cluster.brokers} == {
        "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    }
    assert len({b.data_dir for b in cluster.brokers}) == 3
    assert len({b.config_file for b in cluster.brokers}) == 3
    assert len({b.log_file for b in cluster.brokers}) == 3
    assert all(isinstance(b, ClusterBroker) and b.replication == 3 for b in cluster.brokers)
    assert cluster.bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"


def test_env_points_the_same_commands_at_the_cluster(tmp_path: Path) -> None:
    env = _cluster_env(tmp_path)
    written = Services.build(env).env()
    assert len(written["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == 3
    assert written["SPARK_MASTER"] == f"spark://127.0.0.1:{env['SPARK_MASTER_PORT']}"
    assert written["KAFKA_TOPIC_REPLICATION"] == "3"
    assert written["CITYFLEET_TOPOLOGY"] == "cluster"
    # Back to one broker: every cluster key is written over, none is left behind in .env
    single = Services.build({**env, "CITYFLEET_TOPOLOGY": "single"}).env()
    assert single["KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{env['KAFKA_PORT']}"
    assert (single["SPARK_MASTER"], single["KAFKA_TOPIC_REPLICATION"]) == ("local[2]", "1")
    assert single["CITYFLEET_TOPOLOGY"] == "single"


@pytest.fixture(scope="module")
def cluster_env(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A whole cluster topology of the test's own (the shared stack installed the tools)."""
    from stack import core

    # Not under pytest's 0700 folders: Mosquitto drops root for its own user and must reach it
    home = Path(tempfile.mkdtemp(prefix="cityfleet-cluster-"))
    home.chmod(0o711)
    env = _cluster_env(home)
    try:
        try:
            values = core.up(progress=False, env=env)
        except UserError as exc:
            pytest.fail(f"the cluster topology did not start: {exc}", pytrace=False)
        yield {**os.environ, **env, **values}
    finally:
        core.down(env=env, progress=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(3000)  # eight JVMs and a drill: ~25 min on a loaded two-core machine
def test_cluster_loses_and_duplicates_nothing_when_a_broker_dies(cluster_env, capsys) -> None:
    from drills import cluster as cluster_drill
    from stack import core

    rows = {r.service: r for r in core.status(cluster_env)}
    for name in ("kafka-1", "kafka-2", "kafka-3", "spark-master", "spark-worker-1",
                 "spark-worker-2"):  # fmt: skip
        assert rows[name].healthy and rows[name].pid, name
    assert cluster_drill.main(["--quick"], env=cluster_env) == 0
    out = capsys.readouterr().out
    assert "cluster chaos: OK: 0 missing, 0 duplicated in silver" in out

"""The local cluster topology: three KRaft Kafka brokers and a Spark standalone cluster.

``make up TOPOLOGY=cluster`` (``CITYFLEET_TOPOLOGY=cluster``) starts, beside the same Mosquitto
and S3 server, three Kafka brokers that are each broker and controller of one quorum, and a
Spark master with two workers from the pyspark wheel (``bin/spark-class``; the wheel has no
``start-master.sh``). Topics get replication factor 3 and ``min.insync.replicas=2``, so with
the bridge's ``acks=all`` a write is on two brokers before it is acknowledged and one broker
may die without losing or refusing anything. The bridge, the streaming job and the reports run
on it unchanged: ``.env`` names the three bootstrap servers and ``SPARK_MASTER``.

Ports follow from the single topology's: broker ``i`` (1-3) listens on ``KAFKA_PORT + 2(i-1)``
with its controller on ``KAFKA_CONTROLLER_PORT + 2(i-1)``; the Spark master on
``SPARK_MASTER_PORT`` (7077) with its web UI on ``SPARK_MASTER_WEBUI_PORT`` (8080), worker ``i``'s
web UI on ``SPARK_WORKER_WEBUI_PORT + (i-1)`` (8081). Every process binds 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityconf import keys
from cityconf.errors import UserError
from cityconf.layout import Layout
from stack.install import ensure_java, pyspark_jars_dir
from stack.kafka import HOST, KafkaBroker, create_topics, topic_partitions
from stack.process import Port, Server

TOPOLOGIES = ("single", "cluster")
BROKERS = 3
WORKERS = 2
WORKER_CORES = 1
WORKER_MEMORY = "2g"  # one executor of Spark's default 1g, with room for its overhead
BROKER_HEAP = "512m"


def topology(env: Mapping[str, str]) -> str:
    """``CITYFLEET_TOPOLOGY``: ``single`` (default) or ``cluster``."""
    name = keys.value(env, "CITYFLEET_TOPOLOGY")
    if name not in TOPOLOGIES:
        raise UserError(
            f"CITYFLEET_TOPOLOGY={name!r} is not a topology; use single or cluster "
            "(make up TOPOLOGY=cluster)",
            exit_code=2,
        )
    return name


@dataclass(frozen=True)
class ClusterPorts:
    """Every port of the cluster topology, derived once from the settings."""

    brokers: tuple[tuple[int, int], ...]
    """(client port, controller port) per broker."""
    master: int
    master_webui: int
    worker_webui: tuple[int, ...]

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], kafka_port: int, controller_port: int
    ) -> ClusterPorts:
        worker_webui = keys.port(env, "SPARK_WORKER_WEBUI_PORT")
        ports = cls(
            brokers=tuple((kafka_port + 2 * i, controller_port + 2 * i) for i in range(BROKERS)),
            master=keys.port(env, "SPARK_MASTER_PORT"),
            master_webui=keys.port(env, "SPARK_MASTER_WEBUI_PORT"),
            worker_webui=tuple(worker_webui + i for i in range(WORKERS)),
        )
        every = [p for pair in ports.brokers for p in pair]
        every += [ports.master, ports.master_webui, *ports.worker_webui]
        if len(set(every)) != len(every):
            raise UserError(
                f"the cluster's ports overlap ({every}): brokers take KAFKA_PORT and "
                "KAFKA_CONTROLLER_PORT plus 0, 2 and 4; move one of them",
                exit_code=2,
            )
        return ports


class ClusterBroker(KafkaBroker):
    """Broker ``node_id`` of the three: its own name (pid, log, data, config) and ports."""

    def __init__(self, layout: Layout, node_id: int, ports: Sequence[tuple[int, int]]) -> None:
        self.name = f"kafka-{node_id}"
        self.node_id = node_id
        self.replication = len(ports)
        self._voters = ",".join(f"{i}@{HOST}:{c}" for i, (_, c) in enumerate(ports, start=1))
        super().__init__(layout, *ports[node_id - 1], heap=BROKER_HEAP)

    def voters(self) -> str:
        return self._voters

    def ports(self) -> list[Port]:
        offset = f" + {2 * (self.node_id - 1)}" if self.node_id > 1 else ""
        return [
            (self.port, f"Kafka broker {self.node_id}", f"KAFKA_PORT{offset}"),
            (self.controller_port, f"Kafka controller {self.node_id}",
             f"KAFKA_CONTROLLER_PORT{offset}"),
        ]  # fmt: skip


class Group:
    """Several servers that start, stop and answer health as one (``stack up`` sees one).

    Members are launched together and then waited for: three KRaft voters need each other
    for a quorum, so starting them one by one would wait forever on the first.
    """

    def __init__(self, name: str, members: Sequence[Server]) -> None:
        self.name = name
        self.members = tuple(members)
        self.start_timeout = max(m.start_timeout for m in self.members)

    @property
    def pid(self) -> int | None:
        pids = [m.pid for m in self.members]
        return pids[0] if all(p is not None for p in pids) else None

    @property
    def log_file(self) -> Path:
        return self.members[0].log_file

    def ports(self) -> list[Port]:
        return [port for m in self.members for port in m.ports()]

    def installed(self) -> bool:
        return all(m.installed() for m in self.members)

    def install(self) -> None:
        for m in self.members:
            if not m.installed():
                m.install()

    def healthy(self) -> bool:
        return all(m.healthy() for m in self.members)

    def outdated(self) -> bool:
        return any(m.outdated() for m in self.members)

    def require_ports_free(self) -> None:
        for m in self.members:
            if m.pid is None:
                m.require_ports_free()

    def start(self) -> None:
        for m in self.members:
            if m.pid is not None and m.outdated():
                m.stop()  # started with a configuration this code would no longer write
            if m.pid is None:
                m.require_ports_free()
                m.launch()
        for m in self.members:
            m.proc.wait_ready(m.healthy, m.start_timeout, "fix the cause and run `make up` again")

    def stop(self) -> bool:
        stopped = [m.stop() for m in reversed(self.members)]  # workers before their master
        return any(stopped)


class KafkaCluster(Group):
    """The three brokers; topics with replication factor 3 and ``min.insync.replicas=2``."""

    def __init__(self, layout: Layout, ports: ClusterPorts) -> None:
        brokers = [ClusterBroker(layout, i, ports.brokers) for i in range(1, BROKERS + 1)]
        super().__init__("kafka", brokers)
        self.brokers = brokers

    def stop(self) -> bool:
        """Every broker at once. One by one, the last voter standing has no quorum left to
        complete its controlled shutdown and waits out its stop timeout before SIGKILL."""
        with ThreadPoolExecutor(len(self.brokers), thread_name_prefix="kafka-stop") as pool:
            return any(list(pool.map(lambda b: b.stop(), self.brokers)))

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def create_topics(self, partitions: Mapping[str, int] | None = None) -> list[str]:
        return create_topics(
            self.bootstrap, partitions or topic_partitions(), replication=len(self.brokers)
        )

    def env(self) -> dict[str, str]:
        first = self.brokers[0]
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_PORT": str(first.port),
            "KAFKA_CONTROLLER_PORT": str(first.controller_port),
            "KAFKA_TOPIC_REPLICATION": str(len(self.brokers)),
        }


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.load(answer)
    except (OSError, urllib.error.URLError, ValueError):
        return None


def spark_home() -> Path:
    """The pyspark wheel is a Spark distribution: ``bin/spark-class`` and ``jars/``."""
    return pyspark_jars_dir().parent


class SparkDaemon(Server):
    """A Spark standalone daemon; its properties file is the marker that tells it apart."""

    start_timeout = 90.0
    main_class: str

    def __init__(self, layout: Layout, name: str) -> None:
        self.name = name
        self.properties_file = layout.config / f"{name}.conf"
        self.work_dir = layout.data / "spark" / name
        super().__init__(layout, str(self.properties_file))

    def installed(self) -> bool:
        return True  # the pyspark wheel is the installation

    def install(self) -> None:
        return None

    def arguments(self) -> list[str]:
        raise NotImplementedError

    def properties(self) -> dict[str, str]:
        return {}

    def launch(self) -> None:
        ensure_java()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.properties_file.parent.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        # Bind and advertise loopback only; a small daemon heap (the executors do the work).
        home = spark_home()
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": HOST,
               "SPARK_LOCAL_HOSTNAME": HOST, "SPARK_DAEMON_MEMORY": "512m"}  # fmt: skip
        command = [str(home / "bin" / "spark-class"), self.main_class, *self.arguments(),
                   "--properties-file", str(self.properties_file)]  # fmt: skip
        self.proc.launch(command, cwd=self.work_dir, env=env)


class SparkMaster(SparkDaemon):
    main_class = "org.apache.spark.deploy.master.Master"

    def __init__(self, layout: Layout, port: int, webui_port: int) -> None:
        super().__init__(layout, "spark-master")
        self.port, self.webui_port = port, webui_port

    @property
    def url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def ports(self) -> list[Port]:
        return [(self.port, "Spark master", "SPARK_MASTER_PORT"),
                (self.webui_port, "Spark master web UI", "SPARK_MASTER_WEBUI_PORT")]  # fmt: skip

    def state(self) -> dict[str, Any] | None:
        """The master's own JSON view (status, workers, applications), or None."""
        return _get_json(f"http://{HOST}:{self.webui_port}/json/")

    def healthy(self) -> bool:
        state = self.state()
        return bool(state) and state.get("status") == "ALIVE"

    def arguments(self) -> list[str]:
        return ["--host", HOST, "--port", str(self.port), "--webui-port", str(self.webui_port)]

    def properties(self) -> dict[str, str]:
        # No REST submission server: jobs come through the master port, and its fixed port
        # 6066 would clash between two stacks on one machine.
        return {"spark.master.rest.enabled": "false"}


class SparkWorker(SparkDaemon):
    main_class = "org.apache.spark.deploy.worker.Worker"

    def __init__(self, layout: Layout, number: int, master: SparkMaster, webui_port: int) -> None:
        super().__init__(layout, f"spark-worker-{number}")
        self.master, self.webui_port = master, webui_port

    def ports(self) -> list[Port]:
        return [(self.webui_port, f"{self.name} web UI", "SPARK_WORKER_WEBUI_PORT")]

    def healthy(self) -> bool:
        """Registered with the master and alive there (its web UI alone says too little)."""
        state = self.master.state() or {}
        mine = f":{self.webui_port}"
        return any(
            w.get("state") == "ALIVE" and str(w.get("webuiaddress", "")).endswith(mine)
            for w in state.get("workers", [])
        )

    def arguments(self) -> list[str]:
        return [
            "--host", HOST, "--port", "0", "--webui-port", str(self.webui_port),
            "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY,
            "--work-dir", str(self.work_dir), self.master.url,
        ]  # fmt: skip


class SparkCluster(Group):
    """A standalone master and its workers; ``SPARK_MASTER`` points the jobs at it."""

    def __init__(self, layout: Layout, ports: ClusterPorts) -> None:
        self.master = SparkMaster(layout, ports.master, ports.master_webui)
        self.workers = [
            SparkWorker(layout, i, self.master, port)
            for i, port in enumerate(ports.worker_webui, start=1)
        ]
        super().__init__("spark", [self.master, *self.workers])

    def env(self) -> dict[str, str]:
        return {
            "SPARK_MASTER": self.master.url,
            "SPARK_MASTER_PORT": str(self.master.port),
            "SPARK_MASTER_WEBUI_PORT": str(self.master.webui_port),
            "SPARK_WORKER_WEBUI_PORT": str(self.workers[0].webui_port),
        }


def endpoint(server: Server) -> str:
    """What a status line shows for one cluster process: its address or its web UI."""
    if isinstance(server, KafkaBroker):
        return server.bootstrap
    if isinstance(server, SparkMaster):
        return server.url
    if isinstance(server, SparkWorker):
        return f"http://{HOST}:{server.webui_port}"
    return server.name

"""Apache Kafka in KRaft mode: one combined broker+controller node from Maven Central jars."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from cityconf.errors import UserError
from cityconf.keys import value
from cityconf.layout import Layout
from contract import DATA_STREAMS, KAFKA_TOPICS
from stack.install import ensure_java, install_kafka, kafka_installed, require_command
from stack.process import Port, Server, port_open

HOST = "127.0.0.1"
DATA_TOPIC_PARTITIONS = 6
OTHER_TOPIC_PARTITIONS = 3

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""

_quiet = logging.getLogger("stack.kafka.librdkafka")
_quiet.setLevel(logging.CRITICAL)  # the probe expects "connection refused" while Kafka starts


def topic_partitions() -> dict[str, int]:
    """Every contract topic and its partition count (data streams get more for parallelism)."""
    data = {s.kafka_topic for s in DATA_STREAMS}
    return {t: DATA_TOPIC_PARTITIONS if t in data else OTHER_TOPIC_PARTITIONS for t in KAFKA_TOPICS}


def admin(bootstrap: str) -> AdminClient:
    return AdminClient(
        {"bootstrap.servers": bootstrap, "logger": _quiet, "socket.timeout.ms": 3000}
    )


def topic_replication(env: Mapping[str, str]) -> int:
    """``KAFKA_TOPIC_REPLICATION``: copies of each topic (1 on one broker, 3 on a cluster)."""
    raw = value(env, "KAFKA_TOPIC_REPLICATION")
    if not raw.isdigit() or int(raw) < 1:
        raise UserError(
            f"KAFKA_TOPIC_REPLICATION={raw!r} is not a replica count; set it to 1 for one broker "
            "or 3 for a three-broker cluster",
            exit_code=2,
        )
    return int(raw)


def min_insync_replicas(replication: int) -> int:
    """One replica may be down and ``acks=all`` still means two copies (1 on a single broker)."""
    return max(1, replication - 1)


def create_topics(
    bootstrap: str, partitions: Mapping[str, int], timeout: float = 30.0, replication: int = 1
) -> list[str]:
    """Create the missing topics; returns the ones created (idempotent)."""
    client = admin(bootstrap)
    existing = set(client.list_topics(timeout=timeout).topics)
    config = {"min.insync.replicas": str(min_insync_replicas(replication))}
    wanted = [
        NewTopic(t, n, replication, config=config)
        for t, n in partitions.items()
        if t not in existing
    ]
    if not wanted:
        return []
    created = []
    for topic, future in client.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout)
            created.append(topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise UserError(
                    f"could not create Kafka topic {topic}: {exc.args[0].str()}"
                ) from exc
    return created


def _cluster_id() -> str:
    while True:  # Kafka refuses ids starting with "-" (they look like options)
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


class KafkaBroker(Server):
    """One KRaft node with its own properties, log dirs, log and pid under ``layout``.

    Alone it is the whole quorum; ``stack.cluster`` names three of them apart (``name``) and
    gives each its node id, the shared voters and the replication factor.
    """

    name = "kafka"
    node_id = 1
    replication = 1
    """Copies of Kafka's internal topics (offsets, transactions, share state)."""
    start_timeout = 90.0
    stop_timeout = 60.0  # a controlled shutdown flushes and closes the logs

    def __init__(self, layout: Layout, port: int, controller_port: int, heap: str = "1g") -> None:
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.config_file = layout.config / f"{self.name}-server.properties"
        self.log4j_file = layout.config / "kafka-log4j2.properties"
        self.data_dir = layout.data / self.name
        super().__init__(layout, str(self.config_file))

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def ports(self) -> list[Port]:
        return [
            (self.port, "Kafka", "KAFKA_PORT"),
            (self.controller_port, "Kafka controller", "KAFKA_CONTROLLER_PORT"),
        ]

    def installed(self) -> bool:
        return kafka_installed(self.layout)

    def install(self) -> None:
        install_kafka(self.layout)

    def _classpath(self) -> str:
        return str(self.layout.kafka_lib / "*")

    def voters(self) -> str:
        return f"{self.node_id}@{HOST}:{self.controller_port}"

    def prepare(self) -> None:
        self.layout.config.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.voters()}",
                    f"listeners=PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://{HOST}:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.data_dir}",
                    "num.partitions=3",
                    f"default.replication.factor={self.replication}",
                    f"min.insync.replicas={min_insync_replicas(self.replication)}",
                    f"offsets.topic.replication.factor={self.replication}",
                    f"transaction.state.log.replication.factor={self.replication}",
                    f"transaction.state.log.min.isr={min_insync_replicas(self.replication)}",
                    f"share.coordinator.state.topic.replication.factor={self.replication}",
                    f"share.coordinator.state.topic.min.isr={min_insync_replicas(self.replication)}",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "",
                ]
            )
        )
        self.log4j_file.write_text(_LOG4J2)
        if not (self.data_dir / "meta.properties").is_file():
            self._format()

    def _format(self) -> None:
        java = require_command("java", "run: apt-get install -y openjdk-17-jre-headless")
        cid_file = self.layout.config / "kafka-cluster-id"
        if not cid_file.is_file():
            cid_file.write_text(_cluster_id())
        cmd = [
            java, "-cp", self._classpath(), f"-Dlog4j2.configurationFile={self.log4j_file}",
            "kafka.tools.StorageTool", "format", "-t", cid_file.read_text().strip(),
            "-c", str(self.config_file), "--ignore-formatted",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise UserError(
                f"formatting Kafka storage failed: {(done.stderr or done.stdout).strip()[-300:]}"
            )

    def command(self) -> list[str]:
        return [
            require_command("java", "run: apt-get install -y openjdk-17-jre-headless"),
            "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.layout.logs}",
            "-cp", self._classpath(), "kafka.Kafka", str(self.config_file),
        ]  # fmt: skip

    def healthy(self) -> bool:
        if not port_open(self.port):  # refused: no need to wait out the metadata timeout
            return False
        try:
            admin(self.bootstrap).list_topics(timeout=2.0)
        except KafkaException:
            return False
        return True

    def launch(self) -> None:
        ensure_java()
        self.prepare()
        self.proc.launch(self.command(), cwd=self.layout.root)

    def create_topics(self, partitions: Mapping[str, int] | None = None) -> list[str]:
        return create_topics(
            self.bootstrap, partitions or topic_partitions(), replication=self.replication
        )

    def topics(self) -> Iterable[str]:
        return admin(self.bootstrap).list_topics(timeout=10).topics.keys()

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "KAFKA_PORT": str(self.port),
                "KAFKA_CONTROLLER_PORT": str(self.controller_port)}  # fmt: skip

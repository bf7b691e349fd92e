"""`stack up`, `stack down`, `stack status`: the shared local servers as one unit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityconf.env import load_env, read_env_file
from cityconf.errors import UserError
from cityconf.keys import default
from cityconf.layout import Layout
from stack.cluster import (
    ClusterPorts,
    Group,
    KafkaCluster,
    SparkCluster,
    endpoint,
    topology,
)
from stack.credentials import Credentials
from stack.env import write_env_file
from stack.install import install_spark_jars, spark_jars_installed
from stack.kafka import KafkaBroker
from stack.locks import exclusive
from stack.mosquitto import Mosquitto
from stack.process import Server
from stack.progress import Progress
from stack.s3 import S3Server
from stack.settings import StackSettings

ENV_HEADER = (
    "Written by `python -m stack up` (make up): endpoints and generated credentials of the local\n"
    "stack. Environment variables override these values. Not committed (git-ignored)."
)


@dataclass(frozen=True)
class Services:
    settings: StackSettings
    mosquitto: Mosquitto
    kafka: KafkaBroker | KafkaCluster
    s3: S3Server
    spark: SparkCluster | None = None
    """The Spark standalone cluster (cluster topology); None: jobs run in local mode."""
    topology: str = "single"

    @classmethod
    def build(cls, env: Mapping[str, str] | None = None) -> Services:
        values = load_env() if env is None else env
        settings = StackSettings.from_env(values)
        layout = settings.layout.ensure()
        creds = Credentials.load_or_create(layout.config / "credentials.json")
        return cls(
            settings=settings,
            mosquitto=Mosquitto(
                layout, settings.mqtt_port, settings.mqtt_tls_port, settings.mqtt_ws_port, creds
            ),
            s3=S3Server(layout, settings.s3_port, creds.s3_access_key, creds.s3_secret_key),
            **_topology(layout, settings, values),
        )

    def servers(self) -> tuple[Server | Group, ...]:
        """In stopping order: Mosquitto first, so no device publishes into a closing pipeline."""
        return (self.mosquitto, self.kafka, self.s3, *((self.spark,) if self.spark else ()))

    def env(self) -> dict[str, str]:
        return {
            # the single topology's values, written too: a switch back from the cluster
            # must not leave its keys behind in .env
            "KAFKA_TOPIC_REPLICATION": default("KAFKA_TOPIC_REPLICATION") or "",
            "SPARK_MASTER": default("SPARK_MASTER") or "",
            **self.mosquitto.env(),
            **self.kafka.env(),
            **self.s3.env(),
            "S3_BUCKET": self.settings.bucket,
            "SPARK_JARS_DIR": str(self.settings.layout.spark_jars),
            "CITYFLEET_STATE_DIR": str(self.settings.layout.root),
            "CITYFLEET_TOPOLOGY": self.topology,
            **(self.spark.env() if self.spark else {}),
        }


def _topology(layout: Layout, settings: StackSettings, env: Mapping[str, str]) -> dict[str, Any]:
    """The Kafka and Spark servers of the chosen topology (``CITYFLEET_TOPOLOGY``)."""
    if topology(env) == "single":
        kafka = KafkaBroker(layout, settings.kafka_port, settings.kafka_controller_port)
        return {"kafka": kafka, "topology": "single"}
    ports = ClusterPorts.from_env(env, settings.kafka_port, settings.kafka_controller_port)
    return {
        "kafka": KafkaCluster(layout, ports),
        "spark": SparkCluster(layout, ports),
        "topology": "cluster",
    }


def _bring_up(server: Server | Group, progress: Progress, installed: threading.Event) -> None:
    name = server.name
    try:
        if server.healthy():
            if not server.outdated():
                progress.say(name, f"already running (pid {server.pid}), healthy")
                return
            progress.say(name, f"configuration changed: restarting (pid {server.pid})")
        if not server.installed():
            with progress.step(name, "installing (first time only)"):
                server.install()
    finally:
        installed.set()
    with progress.step(name, "starting"):
        server.start()


def _preflight(services: Services) -> None:
    """Fail before starting anything when a port a stopped server needs is taken."""
    for server in services.servers():
        if server.pid is None:
            server.require_ports_free()


def up(progress: bool = True, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Install what is missing, start what is not running, create topics and bucket; write .env."""
    services = Services.build(env)
    # One `stack up` at a time per state folder (parallel test sessions call it too).
    with exclusive(services.settings.layout.run / "stack.lock"):
        return _up(services, Progress(enabled=progress))


def _up(services: Services, report: Progress) -> dict[str, str]:
    _preflight(services)

    kafka_installed = threading.Event()

    def mosquitto() -> None:
        _bring_up(services.mosquitto, report, threading.Event())

    def kafka() -> None:
        _bring_up(services.kafka, report, kafka_installed)
        created = services.kafka.create_topics()
        if created:
            report.say("kafka", f"created topics {', '.join(sorted(created))}")

    def s3() -> None:
        _bring_up(services.s3, report, threading.Event())
        if services.s3.ensure_bucket(services.settings.bucket):
            report.say("s3", f"created bucket {services.settings.bucket}")

    def spark() -> None:
        kafka_installed.wait()  # Kafka's jars first: the broker is on the critical path
        if not spark_jars_installed(services.settings.layout):
            with report.step("spark", "collecting Spark jars (first time only)"):
                install_spark_jars(services.settings.layout)
        if services.spark is not None:
            _bring_up(services.spark, report, threading.Event())

    try:
        _run_all({"mosquitto": mosquitto, "kafka": kafka, "s3": s3, "spark": spark})
    finally:
        report.close()
    values = services.env()
    env_path = services.settings.env_file
    current = read_env_file(env_path)
    if any(current.get(k) != v for k, v in values.items()):  # rewrite only on change
        write_env_file(env_path, values, ENV_HEADER)
    report.say("stack", f"ready in {_elapsed(report):.1f} s; settings in {env_path}")
    return values


def _elapsed(progress: Progress) -> float:
    return time.monotonic() - progress.start


def _run_all(tasks: Mapping[str, Callable[[], None]]) -> None:
    """Run independent tasks in threads; re-raise the first failure after all have finished."""
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="stack") as pool:
        futures = {name: pool.submit(task) for name, task in tasks.items()}
    errors = [(name, f.exception()) for name, f in futures.items() if f.exception() is not None]
    for _name, exc in errors:
        if not isinstance(exc, UserError):
            raise exc
    if errors:
        first = errors[0][1]
        if len(errors) > 1:
            others = "; also: " + "; ".join(f"{n}: {e}" for n, e in errors[1:])
            raise UserError(f"{first}{others}", getattr(first, "exit_code", 1))
        raise first


def down(env: Mapping[str, str] | None = None, progress: bool = True) -> list[str]:
    """Stop every server by pid (graceful first); data stays. Returns the names stopped."""
    services = Services.build(env)
    report = Progress(enabled=progress)
    stopped = []
    for server in services.servers():
        with report.step(server.name, "stopping"):
            if server.stop():
                stopped.append(server.name)
            else:
                report.say(server.name, "was not running")
    report.close()
    return stopped


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    endpoint: str
    healthy: bool
    pid: int | None
    log_file: Path | None


def status(env: Mapping[str, str] | None = None) -> list[ServiceStatus]:
    services = Services.build(env)
    mq, kafka, s3 = services.mosquitto, services.kafka, services.s3
    jars = services.settings.layout.spark_jars
    checks: dict[str, Callable[[], bool]] = {
        "mqtt": mq.healthy,
        "mqtt-tls": mq.tls_healthy,
        "kafka": kafka.healthy,
        "s3": s3.healthy,
    }
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        results = {name: pool.submit(check) for name, check in checks.items()}
    ok = {name: f.result() for name, f in results.items()}
    return [
        ServiceStatus("mosquitto", mq.endpoints()["mqtt"], ok["mqtt"], mq.pid, mq.log_file),
        ServiceStatus(
            "mosquitto-tls", mq.endpoints()["mqtts"], ok["mqtt-tls"], mq.pid, mq.log_file
        ),
        *_kafka_rows(kafka, ok["kafka"]),
        ServiceStatus("s3", s3.endpoint, ok["s3"], s3.pid, s3.log_file),
        ServiceStatus(
            "spark-jars", str(jars), spark_jars_installed(services.settings.layout), None, None
        ),
        *(_member_rows(services.spark) if services.spark else []),
    ]


def _kafka_rows(kafka: KafkaBroker | KafkaCluster, healthy: bool) -> list[ServiceStatus]:
    if isinstance(kafka, KafkaCluster):
        return _member_rows(kafka)
    return [ServiceStatus("kafka", kafka.bootstrap, healthy, kafka.pid, kafka.log_file)]


def _member_rows(group: Group) -> list[ServiceStatus]:
    """One row per process of a cluster group: each broker, the Spark master, each worker."""
    return [
        ServiceStatus(m.name, endpoint(m), m.healthy(), m.pid, m.log_file) for m in group.members
    ]

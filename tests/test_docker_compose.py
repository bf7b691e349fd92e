"""docker-compose.yml cannot be run here (no Docker engine), so check what can be checked:
every mounted path and referenced file exists, every service's command is a real entry point,
and each defect issue 16 found by reading the file stays fixed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cityconf.env import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_SERVICES = [name for name, s in SERVICES.items() if "build" in s]


def test_has_the_whole_system() -> None:
    wanted = {"mosquitto", "kafka-1", "kafka-2", "kafka-3", "s3", "spark-master", "bridge"}
    wanted |= {"stream", "devices"}
    assert wanted <= set(SERVICES)
    assert sum(1 for s in SERVICES.values() if "Worker" in str(s.get("command"))) == 2
    assert SERVICES["mosquitto"]["image"].startswith("eclipse-mosquitto:2")


ONE_SHOT = ("mosquitto-init", "provision")


@pytest.mark.parametrize("name", [n for n in SERVICES if n not in ONE_SHOT])
def test_every_service_has_a_healthcheck(name: str) -> None:
    assert "healthcheck" in SERVICES[name], f"{name} has no healthcheck"


@pytest.mark.parametrize("name", list(SERVICES))
def test_bind_mounts_exist(name: str) -> None:
    for volume in SERVICES[name].get("volumes", []):
        source = volume.split(":", 1)[0]
        if source.startswith((".", "/")):
            assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"


def test_dockerfile_copies_existing_paths() -> None:
    build = SERVICES[APP_SERVICES[0]]["build"]
    dockerfile = REPO_ROOT / build["context"] / build["dockerfile"]
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO_ROOT / source).exists(), f"Dockerfile copies missing {source}"


def _command(name: str) -> list[str]:
    command = SERVICES[name]["command"]
    return command if isinstance(command, list) else command.split()


@pytest.mark.parametrize("name", [n for n in APP_SERVICES if _command(n)[0] == "python"])
def test_python_commands_are_real_entry_points(name: str) -> None:
    argv = _command(name)
    assert argv[1] == "-m"
    # `python -m stack <subcommand>` must know the subcommand; other modules take --help
    cmd = argv[:4] if argv[2] == "stack" else argv[:3]
    result = subprocess.run(
        [sys.executable, *cmd[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, f"{' '.join(cmd)} --help failed: {result.stderr[-500:]}"
    if "--scenario" in argv:
        scenario = argv[argv.index("--scenario") + 1]
        assert (REPO_ROOT / "scenarios" / f"{scenario}.yaml").is_file()


@pytest.mark.parametrize("name", [n for n in APP_SERVICES if _command(n)[0] != "python"])
def test_spark_commands_come_with_pyspark(name: str) -> None:
    program = _command(name)[0]
    assert shutil.which(program, path=str(Path(sys.executable).parent)), program
    assert re.match(
        r"org\.apache\.spark\.deploy\.(master\.Master|worker\.Worker)$", _command(name)[1]
    )


# --- the defects issue 16 found by reading the file closely: each one has a test ---

KAFKA = {n: s for n, s in SERVICES.items() if str(s.get("image", "")).startswith("apache/kafka")}
VOLUMES: set[str] = set(COMPOSE.get("volumes") or {})


def _env(name: str) -> dict[str, str]:
    env = SERVICES[name].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _named_mounts(name: str) -> dict[str, str]:
    """Container path -> named volume, for the named volumes a service mounts."""
    mounts = {}
    for volume in SERVICES[name].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source in VOLUMES:
            mounts[target] = source
    return mounts


def _under(path: str, mounts: dict[str, str]) -> str | None:
    for target, volume in mounts.items():
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return volume
    return None


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    out = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_three_kafka_brokers_form_one_kraft_quorum() -> None:
    assert len(KAFKA) == 3
    envs = [_env(n) for n in KAFKA]
    assert len({e["KAFKA_NODE_ID"] for e in envs}) == 3
    assert len({e["CLUSTER_ID"] for e in envs}) == 1  # one cluster, not three
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs}
    assert len(voters) == 1
    voter_ids = {v.split("@")[0] for v in voters.pop().split(",")}
    assert voter_ids == {e["KAFKA_NODE_ID"] for e in envs}
    for e in envs:
        assert e["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert e["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"


@pytest.mark.parametrize("name", list(KAFKA))
def test_kafka_keeps_its_data_on_its_own_volume(name: str) -> None:
    # the image's default log.dirs is /tmp/kraft-combined-logs: a volume elsewhere is never used
    log_dirs = _env(name).get("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs")
    volume = _under(log_dirs, _named_mounts(name))
    assert volume, f"{name}: log.dirs {log_dirs} is on no named volume"
    others = [n for n in KAFKA if n != name]
    assert all(volume not in _named_mounts(o).values() for o in others), "brokers share a volume"


@pytest.mark.parametrize("name", list(KAFKA))
def test_kafka_is_reachable_from_the_host_and_the_network(name: str) -> None:
    env = _env(name)
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    listeners = _listeners(env["KAFKA_LISTENERS"])
    published = {int(p.split(":")[1]): int(p.split(":")[2]) for p in SERVICES[name]["ports"]}
    host_side = [(n, port) for n, (host, port) in advertised.items() if host == "127.0.0.1"]
    assert host_side, f"{name} advertises no address a tool on the host can reach"
    for listener, port in host_side:
        container_port = listeners[listener][1]
        assert published.get(port) == container_port, f"{name}: {port} is not published"
    internal = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert advertised[internal][0] == name, f"{name} advertises another name to its peers"
    assert all(p.startswith("127.0.0.1:") for p in SERVICES[name]["ports"])


def test_apps_bootstrap_from_every_broker() -> None:
    for name in APP_SERVICES:
        servers = _env(name)["KAFKA_BOOTSTRAP_SERVERS"].split(",")
        internal = {f"{b}:{_listeners(_env(b)['KAFKA_ADVERTISED_LISTENERS'])['INTERNAL'][1]}"
                    for b in KAFKA}  # fmt: skip
        assert set(servers) == internal, name
        assert _env(name)["KAFKA_TOPIC_REPLICATION"] == "3", f"{name}: topics would get RF 1"


def _host_path_keys() -> set[str]:
    """The keys `make up` writes into .env whose values are paths on the host."""
    from stack.core import Services

    with tempfile.TemporaryDirectory() as home:
        env = {"CITYFLEET_STATE_DIR": home, "CITYFLEET_TOOLS_DIR": f"{home}/tools"}
        written = Services.build(env).env()
    return {k for k, v in written.items() if v.startswith("/")}


def test_no_host_path_reaches_a_container() -> None:
    host_keys = _host_path_keys()
    assert {"CITYFLEET_STATE_DIR", "SPARK_JARS_DIR"} <= host_keys  # the test sees them
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert not interpolated & host_keys, "a host path from .env is interpolated into a container"
    for name, service in SERVICES.items():
        assert "env_file" not in service, f"{name} reads the host .env wholesale"
        for key, value in _env(name).items():
            assert str(REPO_ROOT) not in value, f"{name}: {key} is a host path"
    for name in APP_SERVICES:
        assert _env(name)["CITYFLEET_STATE_DIR"].startswith("/app/"), name
        assert _env(name)["SPARK_JARS_DIR"].startswith("/app/"), name


def test_build_context_leaves_out_host_state_and_secrets() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".cityfleet/", ".venv/"):
        assert entry in ignored, f".dockerignore must list {entry}"


def test_image_copies_every_package_pip_installs() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+)/ ", dockerfile, re.MULTILINE))
    assert {pattern.rstrip("*") for pattern in include} <= copied


def test_streaming_checkpoint_is_on_a_volume_the_workers_share() -> None:
    argv = _command("stream")
    checkpoint = argv[argv.index("--checkpoint") + 1]
    volume = _under(checkpoint, _named_mounts("stream"))
    assert volume, f"checkpoint {checkpoint} is inside the container and lost on recreate"
    workers = [n for n in SERVICES if "Worker" in str(SERVICES[n].get("command"))]
    for worker in workers:  # executors write the state store into the checkpoint
        assert _under(checkpoint, _named_mounts(worker)) == volume, worker


def test_spark_services_advertise_their_service_name() -> None:
    # the image binds 0.0.0.0 (SPARK_LOCAL_IP); without a name Spark would advertise 0.0.0.0
    for name in ("spark-master", "stream", "spark-worker-1", "spark-worker-2"):
        assert _env(name)["SPARK_LOCAL_HOSTNAME"] == name


def test_bridge_metrics_are_reachable_in_the_network() -> None:
    argv = _command("bridge")
    host = argv[argv.index("--metrics-host") + 1]
    assert host not in ("127.0.0.1", "localhost"), "metrics bound to the container's loopback"
    port = argv[argv.index("--metrics-port") + 1]
    assert f"http://bridge:{port}/metrics" in str(SERVICES["bridge"]["healthcheck"]["test"])


def test_bridge_binds_metrics_where_the_compose_file_says() -> None:
    from bridge.__main__ import parse_args
    from bridge.settings import load_settings

    args = parse_args(_command("bridge")[3:])
    env = {"MQTT_URL": "mqtt://mosquitto:1883", "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:19092"}
    overrides = {"metrics_host": args.metrics_host, "metrics_port": args.metrics_port}
    assert load_settings(env, overrides=overrides).metrics_host == "0.0.0.0"
    assert load_settings(env).metrics_host == "127.0.0.1"  # loopback unless asked

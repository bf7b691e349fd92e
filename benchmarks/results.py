"""Benchmark rows: printing them as a table and writing them as JSON and Markdown."""

from __future__ import annotations

import json
import platform
import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import psutil

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Row(TypedDict, total=False):
    benchmark: str
    figure: float
    unit: str
    reference: str
    reference_value: float
    ratio: float
    note: str


def row(
    benchmark: str,
    figure: float,
    unit: str,
    reference: str = "",
    reference_value: float | None = None,
    note: str = "",
) -> Row:
    """A row; the ratio is figure / reference when a reference was measured."""
    r: Row = {"benchmark": benchmark, "figure": round(figure, 3), "unit": unit}
    if reference:
        r["reference"] = reference
    if reference_value:
        r["reference_value"] = round(reference_value, 3)
        r["ratio"] = round(figure / reference_value, 3)
    if note:
        r["note"] = note
    return r


BRIDGE = "bridge, 1 process, QoS 1, ack after Kafka"
SPARK = "spark: Kafka → silver on S3, local[2]"
GOALS = {
    # issue 17's goals, as shares of the bridge's one-process rate measured in the same run
    SPARK: 0.75,
    "end to end: devices → silver, fast clock": 0.5,
}


def bridge_rate(rows: list[Row]) -> float | None:
    """The bridge's one-process msg/s among ``rows``, if the bridge stage ran."""
    return next((r["figure"] for r in rows if r["benchmark"] == BRIDGE), None)


def against_bridge(rows: list[Row]) -> list[Row]:
    """One row per goal: the stage's rate over the bridge's one-process rate, same run.

    Stages measure themselves; only a run of several stages can relate them, so this is
    computed once every stage has reported (nothing when the bridge stage did not run).
    """
    by_name = {r["benchmark"]: r for r in rows}
    bridge = by_name.get(BRIDGE)
    if bridge is None:
        return []
    out = []
    for name, goal in GOALS.items():
        if name in by_name:
            out.append(
                row(
                    f"{name} ÷ bridge",
                    by_name[name]["figure"] / bridge["figure"],
                    "×",
                    reference="goal",
                    reference_value=goal,
                    note=f"{by_name[name]['figure']:,.0f} ÷ {bridge['figure']:,.0f} msg/s",
                )
            )
    return out


def machine() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return "" if value is None else str(value)


COLUMNS = ("benchmark", "figure", "unit", "reference", "reference_value", "ratio", "note")


def markdown(rows: Iterable[Row], when: datetime, info: dict[str, Any]) -> str:
    lines = [
        f"Measured {when:%Y-%m-%d %H:%M} UTC on `{info['host']}` "
        f"({info['cpus']} CPUs, {info['memory_gib']} GiB, Python {info['python']}).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def print_table(rows: list[Row], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in COLUMNS:
        table.add_column(
            c, justify="right" if c in ("figure", "reference_value", "ratio") else "left"
        )
    for r in rows:
        table.add_row(*(_fmt(r.get(c)) for c in COLUMNS))
    Console().print(table)


def write(rows: list[Row], stage: str | None = None) -> tuple[Path, Path]:
    """Write ``results/<date>-<host>[-<stage>].json`` and the matching ``.md``; return both."""
    when = datetime.now(UTC)
    info = machine()
    stem = f"{when:%Y-%m-%d}-{info['host']}" + (f"-{stage}" if stage else "")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"{stem}.json"
    md_path = RESULTS_DIR / f"{stem}.md"
    payload = {"measured_at": when.isoformat(), "machine": info, "rows": rows}
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(rows, when, info), encoding="utf-8")
    return json_path, md_path


def report(rows: list[Row], stage: str | None = None) -> None:
    """Print the table and write the files: what every benchmark entry point ends with."""
    print_table(rows, f"CityFleet benchmarks{f': {stage}' if stage else ''}")
    json_path, md_path = write(rows, stage)
    print(f"results: {json_path}\n         {md_path}")

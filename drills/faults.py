"""Faults under load, for both drills: inject one, time the recovery, charge what it cost.

A ``Fault`` is a name, a function that injects it and a progress probe (a count that grows
while the pipeline flows). After the run the audit core (``spark.audit``, the one the demo
and the report use) checks silver against the devices' manifests; each lost row and each
copy removed before silver is charged to the fault injected before it.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cityconf.errors import UserError
from contract.manifest import Manifest
from drills.flow import wait_for_rows
from spark import audit as audit_core
from spark.reader import LakeReader
from stack.process import Process

console = Console(stderr=True)


@dataclass
class Fault:
    name: str
    inject: Callable[[], None]
    progress: Callable[[], int]
    """A count that grows while the pipeline flows; recovery is when it grows again."""
    injected_at: float = 0.0
    recovery_s: float | None = None
    lost: int = 0
    duplicated: int = 0


def wait_for_growth(probe: Callable[[], int], timeout: float) -> float | None:
    """Seconds until ``probe()`` exceeds its value at the start, or None after ``timeout``."""
    start = time.monotonic()
    base = probe()
    while time.monotonic() - start < timeout:
        time.sleep(0.5)
        now = probe()
        if now > base >= 0 or (base < 0 <= now and now > 0):
            return time.monotonic() - start
    return None


def inject(fault: Fault, recovery_timeout: float) -> None:
    """Inject one fault and time how long until its progress probe grows again."""
    console.print(f"==> fault: {fault.name}")
    fault.injected_at = time.time()
    fault.inject()
    fault.recovery_s = wait_for_growth(fault.progress, timeout=recovery_timeout)
    console.print(f"    flowing again after {fault.recovery_s or float('nan'):.1f} s")


def inject_all(
    faults: list[Fault],
    interval: float,
    parts: Callable[[], Iterable[Process]],
    recovery_timeout: float,
) -> None:
    """Inject the faults ``interval`` s apart (and wait as long after the last), each only
    while every one of ``parts()`` (the pipeline's processes now) is still running fine."""
    for fault in faults:
        time.sleep(interval)
        for part in parts():
            part.check()
        inject(fault, recovery_timeout)
    time.sleep(interval)


def wait_for_silver(reader: LakeReader, expected: Manifest, timeout: float) -> None:
    """After the devices stopped: until silver holds as many rows as they published."""
    total = sum(e.count for e in expected.expected())
    console.print(f"==> devices done; {total:,} messages to find in silver")
    wait_for_rows(reader, total, timeout=timeout)


@dataclass
class FaultAudit:
    """The audit core's verdict, with each loss and extra copy charged to a fault."""

    missing: int = 0
    silver_duplicates: int = 0
    lost_by_fault: Counter[str] = field(default_factory=Counter)
    duplicates_by_fault: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.silver_duplicates == 0


def _charge(faults: list[tuple[str, float]], when_s: float) -> str:
    """The fault injected last before ``when_s`` (epoch seconds), or 'before any fault'."""
    times = [t for _, t in faults]
    i = bisect.bisect_right(times, when_s) - 1
    return faults[i][0] if i >= 0 else "before any fault"


def charged_audit(
    reader: LakeReader, manifest: Manifest, faults: list[tuple[str, float]]
) -> FaultAudit:
    """The audit core's verdict, each loss and extra copy charged to the fault before it."""
    core = audit_core.run(reader, manifest, kafka_times=True)
    result = FaultAudit(missing=core.missing, silver_duplicates=core.silver_duplicates)
    for (_stream, _device, _seq), times in core.kafka_times.items():
        for extra in times[1:]:
            result.duplicates_by_fault[_charge(faults, extra)] += 1
    for row in core.rows:
        for first, last in row.missing_seqs:
            for seq in range(first, last + 1):
                # Lost after the previous seq reached Kafka: charge the fault before that.
                before = core.kafka_times.get((row.stream, row.device_id, seq - 1), (0.0,))[0]
                result.lost_by_fault[_charge(faults, before)] += 1
    return result


def charge(reader: LakeReader, expected: Manifest, faults: list[Fault]) -> FaultAudit:
    """Audit silver; charge each lost row and extra copy to the fault injected before it."""
    result = charged_audit(reader, expected, [(f.name, f.injected_at) for f in faults])
    for fault in faults:
        fault.lost = result.lost_by_fault.get(fault.name, 0)
        fault.duplicated = result.duplicates_by_fault.get(fault.name, 0)
    return result


def table(faults: list[Fault], root_uri: str) -> Table:
    t = Table(title=f"fault drill: {root_uri}", title_justify="left")
    for col in ("fault", "lost", "duplicated before silver (removed)", "recovery s"):
        t.add_column(col, justify="left" if col == "fault" else "right")
    for f in faults:
        rec = "did not recover" if f.recovery_s is None else f"{f.recovery_s:.1f}"
        t.add_row(f.name, str(f.lost), str(f.duplicated), rec)
    return t


def conclude(
    label: str, root_uri: str, faults: list[Fault], result: FaultAudit, run_dir: Path
) -> int:
    """Print the table and the verdict line; the exit code (a fault never recovered from
    is an error naming the logs)."""
    out = Console()
    out.print(table(faults, root_uri))
    verdict = (
        f"{label}: {'OK' if result.ok else 'FAILED'}: {result.missing} missing, "
        f"{result.silver_duplicates} duplicated in silver, "
        f"{sum(f.duplicated for f in faults)} duplicates removed before silver"
    )
    out.print(f"[bold]{verdict}")
    if any(f.recovery_s is None for f in faults):
        raise UserError(f"a component did not recover; logs in {run_dir}")
    return 0 if result.ok else 1

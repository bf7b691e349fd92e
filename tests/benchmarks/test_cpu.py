"""What the CPU meter counts: each part's process tree, and a JVM's JIT compiler threads apart."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from benchmarks.cpu import CpuMeter

# A stand-in for a JVM: one thread named as HotSpot's C2 compiler thread spins, ends, and the
# process spins on afterwards, so the meter also sees it after the thread has gone.
FAKE_JVM = """
import ctypes, threading, time
def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
def compiler():
    ctypes.CDLL(None).prctl(15, b"C2 CompilerThread0", 0, 0, 0)  # PR_SET_NAME
    spin(0.6)
thread = threading.Thread(target=compiler)
thread.start()
thread.join()
spin(0.4)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="thread names are read from /proc")
def test_a_jvms_compiler_threads_are_counted_apart_even_after_they_end() -> None:
    meter = CpuMeter()
    jvm = subprocess.Popen([sys.executable, "-c", FAKE_JVM])
    meter.add("jvm", [jvm.pid], jvm=True)
    meter.add("other", [os.getpid()])
    meter.start()
    while jvm.poll() is None:
        meter.sample()
        time.sleep(0.02)
    spent, jit = meter.seconds(), meter.jit()
    assert set(jit) == {"jvm"}
    assert 0.5 <= jit["jvm"] <= 0.75
    assert spent["jvm"] >= jit["jvm"] + 0.3

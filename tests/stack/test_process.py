"""Supervised processes: a server dying on start is reported with its log, in one line."""

from __future__ import annotations

import sys

import pytest

from stack.errors import StackError
from stack.install import require_command
from stack.process import Supervised

pytestmark = pytest.mark.integration  # starts (tiny) processes


def test_a_server_that_dies_on_start_points_at_its_log(tmp_path):
    proc = Supervised("fake", tmp_path / "fake.pid", tmp_path / "fake.log", "fake-marker")
    script = "import sys; print('fake-marker: bind failed: address in use'); sys.exit(3)"
    proc.launch([sys.executable, "-c", script, "fake-marker"], cwd=tmp_path)
    with pytest.raises(StackError) as err:
        proc.wait_ready(lambda: False, timeout=30, hint="fix it")
    message = str(err.value)
    assert "fake died on start (exit code 3)" in message
    assert str(tmp_path / "fake.log") in message and "address in use" in message
    assert "\n" not in message
    assert proc.pid is None


def test_stop_is_graceful_then_forced(tmp_path):
    proc = Supervised("sleeper", tmp_path / "s.pid", tmp_path / "s.log", "sleeper-marker")
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('UP' + '-NOW', flush=True); time.sleep(60)"
    )
    proc.launch([sys.executable, "-c", script, "sleeper-marker"], cwd=tmp_path)
    proc.wait_ready(lambda: "UP-NOW" in proc.log_file.read_text(), timeout=10, hint="")
    assert proc.stop(timeout=1.0) is True  # SIGTERM ignored, so SIGKILL after 1 s
    assert proc.pid is None and not proc.pid_file.exists()
    assert proc.stop() is False


def test_missing_tool_names_the_fix():
    with pytest.raises(StackError, match="not-a-real-tool is not installed; install it"):
        require_command("not-a-real-tool", "install it")

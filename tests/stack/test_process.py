"""Supervised processes and the Server life cycle: a server dying on start is reported with its
log, in one line; a busy port stops a start before anything is launched."""

from __future__ import annotations

import re
import socket
import sys
import time

import pytest

from cityconf.errors import UserError
from cityconf.layout import Layout
from stack.install import require_command
from stack.process import Port, Process, Server, Supervised, free_port, running

pytestmark = pytest.mark.integration  # starts (tiny) processes


def test_a_server_that_dies_on_start_points_at_its_log(tmp_path):
    proc = Supervised("fake", tmp_path / "fake.pid", tmp_path / "fake.log", "fake-marker")
    script = "import sys; print('fake-marker: bind failed: address in use'); sys.exit(3)"
    proc.launch([sys.executable, "-c", script, "fake-marker"], cwd=tmp_path)
    with pytest.raises(UserError) as err:
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
    with pytest.raises(UserError, match="not-a-real-tool is not installed; install it"):
        require_command("not-a-real-tool", "install it")


class Sleeper(Server):
    """A stand-in server: a Python process that says it is up, then sleeps."""

    name = "sleeper"
    stop_timeout = 1.0

    def __init__(self, layout: Layout, port: int) -> None:
        self.port = port
        self.launches = 0
        super().__init__(layout, f"sleeper-marker-{port}")

    def ports(self) -> list[Port]:
        return [(self.port, "Sleeper", "SLEEPER_PORT")]

    def installed(self) -> bool:
        return True

    def install(self) -> None:
        pass

    def healthy(self) -> bool:
        return self.log_file.is_file() and "UP-NOW" in self.log_file.read_text()

    def launch(self) -> None:
        self.launches += 1
        script = "import time; print('UP' + '-NOW', flush=True); time.sleep(60)"
        self.proc.launch([sys.executable, "-c", script, self.proc.marker], cwd=self.layout.root)


def test_server_files_are_named_after_it_and_a_running_one_is_reused(tmp_path):
    layout = Layout.at(tmp_path).ensure()
    server = Sleeper(layout, free_port())
    assert server.proc.pid_file == layout.run / "sleeper.pid"
    assert server.log_file == layout.logs / "sleeper.log"
    try:
        server.start(timeout=10)
        pid = server.pid
        assert pid is not None and server.healthy()
        again = Sleeper(layout, server.port)  # another handle, as a second `stack up` makes
        again.start(timeout=10)
        assert again.pid == pid and again.launches == 0 and server.launches == 1
    finally:
        assert server.stop() is True
    assert server.pid is None and server.stop() is False


def test_a_busy_port_stops_the_start_before_launching(tmp_path):
    layout = Layout.at(tmp_path).ensure()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = Sleeper(layout, squatter.getsockname()[1])
        with pytest.raises(UserError, match="SLEEPER_PORT"):
            server.start(timeout=10)
    assert server.launches == 0 and server.pid is None


def test_a_child_that_fails_is_one_line_naming_its_log(tmp_path):
    script = "import sys; print('starting'); print('boom: no broker', flush=True); sys.exit(4)"
    child = Process("child", [sys.executable, "-c", script], tmp_path / "child.log").start()
    assert child.wait(30) == 4 and not child.alive
    with pytest.raises(UserError) as err:
        child.check()
    message = str(err.value)
    assert message.startswith("child exited with code 4; see ")
    assert str(tmp_path / "child.log") in message and "boom: no broker" in message
    assert "\n" not in message
    assert "starting:" in child.log()  # the header line names the command


def test_running_stops_children_in_reverse_order_whatever_happens(tmp_path):
    script = (
        "import signal, sys, time; "
        "signal.signal(signal.SIGTERM, lambda *_: (print('stopped', time.time_ns(), "
        "flush=True), sys.exit(0))); print('UP' + '-NOW', flush=True); time.sleep(60)"
    )
    first, second = (
        Process(name, [sys.executable, "-c", script], tmp_path / f"{name}.log")
        for name in ("first", "second")
    )
    with pytest.raises(RuntimeError), running(first, second):
        for child in (first, second):
            while "UP-NOW" not in child.log():
                assert child.alive, child.log()
                time.sleep(0.05)
        raise RuntimeError("the caller failed")
    assert (first.returncode, second.returncode) == (0, 0)
    line = re.compile(r"^stopped (\d+)$", re.MULTILINE)
    stopped = {c.name: int(line.search(c.log())[1]) for c in (first, second)}
    assert stopped["second"] < stopped["first"]

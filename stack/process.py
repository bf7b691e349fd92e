"""The one process runner: child processes in their own session, log files, stops, pid files.

``Process`` is every child the project starts: its output appended to a log file, in a session
of its own (a Ctrl-C reaches only the parent, which then stops its children in a known order),
with a graceful stop, a crash-like kill and a one-line error naming the log. The pipeline's
processes under the demo and the drills (``drills.children``) and the bridge under the tests
and benchmarks (``drills.harness``) are ``Process``es; ``running`` starts several and stops
them in reverse order whatever happens.

``Supervised`` is a server process known by its pid file, started as a ``Process`` and found
again by a later command; ``Server`` is what every local server (Mosquitto, Kafka, S3) shares
on top of it, written once: its pid and log files named after it, the ports checked free
before a start, start (or reuse) and wait until healthy, stop and kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Self

import psutil

from cityconf.errors import UserError
from cityconf.layout import Layout


def port_listener(port: int) -> int | None:
    """The pid listening on TCP ``port`` on this machine: None when nothing listens, -1 when
    something does but its pid cannot be seen."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return -1 if conn.pid is None else conn.pid
    return None


def port_owner(port: int) -> str | None:
    """Describe the process listening on ``port`` ("mosquitto (pid 123)"), if it can be seen."""
    pid = port_listener(port)
    if pid is None:
        return None
    if pid < 0:
        return "another process"
    try:
        return f"{psutil.Process(pid).name()} (pid {pid})"
    except psutil.Error:
        return f"pid {pid}"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A port nobody listens on right now (for throwaway test instances)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_free(port: int, what: str, env_key: str) -> None:
    if port_free(port):
        return
    owner = port_owner(port) or "another process"
    raise UserError(
        f"{what} port {port} is already in use by {owner}; stop it, or choose another port "
        f"with {env_key}=<port>"
    )


def log_tail(path: Path, lines: int = 3) -> str:
    """The last non-empty lines of a log, joined on one line."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


class Process:
    """One child process, ``argv`` with its output (stdout and stderr) appended to ``log_file``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_file: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== {stamp} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the parent only; it stops us in order
                close_fds=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def poll(self) -> int | None:
        """The exit code once it exited (reaping it, so it is not a zombie), else None."""
        return None if self.proc is None else self.proc.poll()

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; ``subprocess.TimeoutExpired`` if it still runs after ``timeout``."""
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.wait(timeout)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the whole process group (a JVM child included)."""
        if self.alive:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """``kill -9`` the whole process group, as a crash would, and reap it."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM to the process itself (graceful drain), then SIGKILL after ``timeout``.

        Only the leader gets the SIGTERM: the streaming job's JVM is in the same group, and
        a JVM that gets SIGTERM shuts Spark down under the Python driver mid-batch.
        Whatever of the group outlives the leader is stopped after it.
        """
        if self.proc is None:
            return None
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        return self.returncode

    def check(self) -> None:
        """Raise a UserError naming the log if the process died with an error."""
        code = self.returncode
        if code not in (None, 0):
            tail = log_tail(self.log_file)
            if len(tail) > 300:  # a JVM stack line can be pages long; the log has it all
                tail = tail[:300] + " ..."
            raise UserError(f"{self.name} exited with code {code}; see {self.log_file}: {tail}")

    def log(self) -> str:
        """The whole log so far (for a test's failure message)."""
        return self.log_file.read_text(errors="replace")


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[tuple[Process, ...]]:
    """Start processes in order; on exit stop them in reverse order, whatever happened."""
    started: list[Process] = []
    try:
        for process in processes:
            started.append(process.start())
        yield processes
    finally:
        for process in reversed(started):
            process.stop()


class Supervised:
    """One server process known by its pid file; ``marker`` (a config path) tells it apart."""

    def __init__(self, name: str, pid_file: Path, log_file: Path, marker: str) -> None:
        self.name = name
        self.pid_file = pid_file
        self.log_file = log_file
        self.marker = marker
        self._child: Process | None = None

    @property
    def pid(self) -> int | None:
        """The pid of the running server, or None (a stale pid file is ignored)."""
        if self._child is not None:
            self._child.poll()  # reap our own child if it died, so it is not a zombie
        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            if not any(self.marker in part for part in proc.cmdline()):
                return None
        except (OSError, ValueError, psutil.Error):
            return None
        return pid

    def launch(self, cmd: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> int:
        # its own session: the server survives `stack up` and its terminal
        self._child = Process(self.name, cmd, self.log_file, env, cwd).start()
        pid = self._child.pid
        assert pid is not None
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def wait_ready(self, probe: Callable[[], bool], timeout: float, hint: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                return
            if self.pid is None:
                code = self._child.poll() if self._child is not None else None
                if self._child is not None and code is None:
                    # forked but not yet exec'd: the cmdline is still Python's, not the server's
                    time.sleep(0.1)
                    continue
                raise UserError(
                    f"{self.name} died on start (exit code {code}); read {self.log_file}: "
                    f"{log_tail(self.log_file)}; {hint}"
                )
            time.sleep(0.25)
        raise UserError(
            f"{self.name} did not answer within {timeout:.0f} s; read {self.log_file}: "
            f"{log_tail(self.log_file)}; {hint}"
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, wait up to ``timeout`` for a clean shutdown, then SIGKILL. True if it ran."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> bool:
        return self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: signal.Signals, timeout: float) -> bool:
        pid = self.pid
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        proc = psutil.Process(pid)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
            if not self._wait_gone(proc, timeout):
                proc.kill()
                self._wait_gone(proc, 10.0)
        if self._child is not None:
            self._child.poll()
        self.pid_file.unlink(missing_ok=True)
        return True

    def _wait_gone(self, proc: psutil.Process, timeout: float) -> bool:
        """Wait for exit; a zombie counts as gone (its parent, often init, reaps it later)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._child is not None:
                self._child.poll()
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
            time.sleep(0.05)
        return False


Port = tuple[int, str, str]
"""A port a server binds: (port, what it is for, the setting that moves it)."""


class Server(ABC):
    """One local server: a ``Supervised`` process with ``<name>.pid`` and ``<name>.log`` files.

    A subclass names itself, passes the marker that tells its process apart (its config path),
    and says how to check health, install, and launch; the life cycle is here.
    """

    name: ClassVar[str]
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 30.0

    def __init__(self, layout: Layout, marker: str) -> None:
        self.layout = layout
        self.proc = Supervised(
            self.name, layout.run / f"{self.name}.pid", layout.logs / f"{self.name}.log", marker
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    @property
    def log_file(self) -> Path:
        return self.proc.log_file

    @abstractmethod
    def ports(self) -> list[Port]: ...

    @abstractmethod
    def installed(self) -> bool: ...

    @abstractmethod
    def install(self) -> None: ...

    @abstractmethod
    def healthy(self) -> bool: ...

    @abstractmethod
    def launch(self) -> None:
        """Write config and folders, then ``self.proc.launch(...)``; ports are already free."""

    def outdated(self) -> bool:
        """Whether the running server was started with a configuration this code would no
        longer write (then `stack up` restarts it); by default a healthy server is reused."""
        return False

    def require_ports_free(self) -> None:
        for port, what, env_key in self.ports():
            require_free(port, what, env_key)

    def start(self, timeout: float | None = None) -> None:
        """Start the server and wait until healthy; a running one is reused (waited for)."""
        timeout = self.start_timeout if timeout is None else timeout
        if self.pid is not None:
            self.proc.wait_ready(self.healthy, timeout, "run `make down` and `make up`")
            return
        self.require_ports_free()
        self.launch()
        self.proc.wait_ready(self.healthy, timeout, "fix the cause and run `make up` again")

    def stop(self) -> bool:
        """Graceful stop (SIGKILL after ``stop_timeout``); True if it was running."""
        return self.proc.stop(self.stop_timeout)

    def kill(self) -> bool:
        return self.proc.kill()

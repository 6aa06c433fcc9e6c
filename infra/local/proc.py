"""Process plumbing shared by every component: progress lines, pid files, start, readiness, stop.

Why hand-rolled instead of supervisord & co.: the stack must run on a bare machine with only the
package registries reachable, survive the Python process that started it (tests, CLI), and be stopped
later by a *different* Python process. So each server is a session leader whose pid we write to a
file; `down` kills only pids from those files, and only if the process still looks like ours
(guards against pid reuse after a reboot).
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


class StackError(RuntimeError):
    """Anything the operator must act on; messages name the log file to read."""


class Reporter:
    """Prints `[stack +12.3s] message` lines so a slow first `up` shows where the time goes."""

    def __init__(self, stream=None, quiet: bool = False) -> None:
        self.t0 = time.monotonic()
        self.stream = stream or sys.stderr
        self.quiet = quiet

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[stack +{self.elapsed():6.1f}s] {message}", file=self.stream, flush=True)


def tail(path: Path, lines: int = 30) -> str:
    """Last lines of a log, for error messages (so the reader need not open the file first)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def as_user(user: str | None) -> dict[str, Any]:
    """Popen keyword arguments that run the child as `user` (only root may ask; None = as we are).

    PostgreSQL refuses to run as root, so as root its processes are started as an unprivileged
    system user (the `postgres` account Debian's package creates)."""
    if user is None:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise StackError(f"user {user!r} does not exist (needed to run a server that refuses root)") from exc
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def run_logged(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None,
               cwd: Path | None = None, timeout: float = 1800, user: str | None = None) -> None:
    """Run an obtaining step (mvn, go, apt) to completion, output appended to `log`; raise on failure.
    `user`: run it as that account (see `as_user`)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n".encode())
        fh.flush()
        try:
            rc = subprocess.run(list(cmd), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, timeout=timeout, **as_user(user)).returncode
        except FileNotFoundError as exc:
            raise StackError(f"cannot run {cmd[0]!r}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"{cmd[0]} took more than {timeout:.0f}s; see {log}") from exc
    if rc != 0:
        raise StackError(f"`{' '.join(cmd)}` failed with exit code {rc}; see {log}:\n{tail(log)}")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections there (cheap pre-check before a protocol probe)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie. Reaps our own exited children so they stop looking alive."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fine, look at /proc
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def rss_mb(pid: int) -> float | None:
    """Resident memory of one process, for `status` and the notes (VmRSS from /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def tree_rss_mb(pid: int) -> float | None:
    """RSS of a process plus its direct children (nginx master + worker)."""
    total = rss_mb(pid)
    if total is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        total += rss_mb(int(child)) or 0.0
    return total


class ManagedProcess:
    """One long-running server: a pid file, a log file, spawn, readiness wait, stop.

    `marker` is a string that must appear in /proc/<pid>/cmdline for a pid file to be trusted.
    """

    def __init__(self, name: str, run_dir: Path, log_dir: Path, marker: str) -> None:
        self.name = name
        self.pid_file = run_dir / f"{name}.pid"
        self.log_file = log_dir / f"{name}.log"
        self.marker = marker
        self._popen: subprocess.Popen | None = None

    def pid(self) -> int | None:
        """The pid from our pid file if that process is alive and still ours, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._popen is not None and self._popen.pid == pid:
            # Our own child: trust Popen. (Right after fork, before exec, /proc/<pid>/cmdline is
            # still *our* Python command line, so the marker test would wrongly say "not ours".)
            return pid if self._popen.poll() is None else None
        if pid_alive(pid) and self.marker in cmdline(pid):
            return pid
        return None

    def spawn(self, cmd: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              user: str | None = None) -> int:
        """Start detached (own session: survives the caller, not hit by its Ctrl-C); record the pid.
        `user`: run the server as that account (see `as_user`); the log and pid files stay ours."""
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                           start_new_session=True, close_fds=True, **as_user(user))
        self.pid_file.write_text(f"{self._popen.pid}\n")
        return self._popen.pid

    def wait_ready(self, probe: Callable[[], str | None], timeout: float, what: str) -> float:
        """Poll `probe` (None = ready, else the reason it is not) until ready, death, or deadline.

        Returns seconds waited. Fails fast if the process exits, quoting the end of its log.
        """
        t0 = time.monotonic()
        deadline = t0 + timeout
        reason: str | None = "not probed yet"
        delay = 0.2
        while True:
            pid = self.pid()
            if pid is None:
                raise StackError(f"{self.name} exited while starting ({what}); see {self.log_file}:\n"
                                 f"{tail(self.log_file)}")
            reason = probe()
            if reason is None:
                return time.monotonic() - t0
            if time.monotonic() >= deadline:
                raise StackError(f"{self.name} not ready after {timeout:.0f}s ({what}): {reason}; "
                                 f"see {self.log_file}:\n{tail(self.log_file)}")
            time.sleep(delay)
            delay = min(1.0, delay * 1.5)

    def stop(self, grace: float = 30.0, sig: int = signal.SIGTERM, group: bool = True) -> bool:
        """Send `sig` (SIGTERM) to the session we started, wait up to `grace` s, then SIGKILL the
        session. True if something stopped. `group=False` signals only the leader: a server that
        shuts down its own children in order (PostgreSQL's postmaster) must be the only one told."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        if group:
            self._signal(pid, sig)
        else:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
        if pid_alive(pid):
            self._signal(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and pid_alive(pid):
                time.sleep(0.1)
        if self._popen is not None and self._popen.pid == pid:
            try:
                self._popen.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            self._popen = None
        self.pid_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        """Signal the whole process group we created (nginx workers too), falling back to the pid."""
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
                return
        except ProcessLookupError:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

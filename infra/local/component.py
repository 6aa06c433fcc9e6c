"""The life cycle every component shares: obtain -> prepare -> spawn -> wait ready; stop; status.

Subclasses only say *what* (how to obtain, which command, how to probe); *how* a server is started
idempotently and waited for is the same for all of them, so it lives here once.
"""

from __future__ import annotations

import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import StackConfig
from .proc import ManagedProcess, Reporter, StackError, port_open, tree_rss_mb


@dataclass
class ComponentStatus:
    name: str
    address: str
    pid: int | None
    healthy: bool
    detail: str
    rss_mb: float | None
    log: str

    def as_dict(self) -> dict:
        return asdict(self)


class Component:
    """Base class. Subclasses set `name`, `env_port` and implement the hooks below."""

    name = "component"
    #: env var that moves this component's port (named in error messages).
    env_port = ""
    #: what readiness means, for progress lines and errors.
    ready_means = "ready"
    #: how `stop` asks the server to exit: signal, and whether to the whole process group.
    stop_signal: int = signal.SIGTERM
    stop_group = True

    def __init__(self, cfg: StackConfig, report: Reporter | None = None) -> None:
        self.cfg = cfg
        self.report = report or Reporter()
        self.proc = ManagedProcess(self.name, cfg.run, cfg.logs, self.marker())

    # Hooks ------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def address(self) -> str:
        return f"{self.cfg.host}:{self.port}"

    @property
    def home(self) -> Path:
        """This component's own folder under the stack dir (config, data)."""
        return self.cfg.root / self.name

    def marker(self) -> str:
        """Substring of the process command line that proves a pid is ours (see ManagedProcess)."""
        return str(self.cfg.root)

    def obtain(self) -> None:
        """Download/build/install what is missing; cheap no-op when everything is there."""

    def prepare(self) -> None:
        """Render config files, create data folders, format storage. Runs before every start."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    def run_as(self) -> str | None:
        """Account the server runs as; None = the invoking user (only servers that refuse root differ)."""
        return None

    def probe(self) -> str | None:
        """None when ready, else why not."""
        raise NotImplementedError

    def depends_ready(self) -> None:
        """Raise StackError if a component this one needs is not up (Connect needs Kafka)."""

    # Life cycle ------------------------------------------------------------------------------------
    def pid(self) -> int | None:
        return self.proc.pid()

    def start(self) -> float:
        """Bring this component up if it is not; returns seconds spent. Idempotent."""
        t0 = time.monotonic()
        if self.launch():
            self.report(f"{self.name}: started pid {self.proc.pid()}, waiting for {self.ready_means} (log {self.proc.log_file})")
            waited = self.proc.wait_ready(self.probe, self.cfg.timeout, self.ready_means)
            self.report(f"{self.name}: ready at {self.address} after {waited:.1f}s")
            return time.monotonic() - t0
        if self.probe() is None:
            self.report(f"{self.name}: already running (pid {self.proc.pid()}) at {self.address}")
            return 0.0
        self.report(f"{self.name}: pid {self.proc.pid()} running but not ready yet; waiting for {self.ready_means}")
        self.proc.wait_ready(self.probe, self.cfg.timeout, self.ready_means)
        self.report(f"{self.name}: ready at {self.address}")
        return time.monotonic() - t0

    def launch(self) -> bool:
        """Spawn the server if it is not running, without waiting for it; True if spawned. Nodes that
        only become ready together (a KRaft quorum needs a majority of its voters) are all launched
        before any is waited for."""
        if self.proc.pid() is not None:
            return False
        if port_open(self.cfg.host, self.port):
            raise StackError(f"{self.name}: port {self.port} is already taken by a process this stack did not "
                             f"start (no live pid in {self.proc.pid_file}); stop it or set {self.env_port}")
        self.obtain()
        self.depends_ready()
        self.prepare()
        self.proc.spawn(self.command(), env=self.environment(), cwd=self.home, user=self.run_as())
        return True

    def kill(self) -> None:
        """SIGKILL the server's whole process group (fault tests: no shutdown hook runs)."""
        self.proc.stop(grace=0.0, sig=signal.SIGKILL)

    def stop(self) -> bool:
        """Stop it if we started it. Data stays. True if a process was stopped."""
        pid = self.proc.pid()
        if pid is None:
            self.proc.pid_file.unlink(missing_ok=True)
            return False
        t0 = time.monotonic()
        self.proc.stop(sig=self.stop_signal, group=self.stop_group)
        self.report(f"{self.name}: stopped pid {pid} in {time.monotonic() - t0:.1f}s")
        return True

    def status(self) -> ComponentStatus:
        pid = self.proc.pid()
        reason = self.probe() if pid is not None else "not running"
        if pid is None and port_open(self.cfg.host, self.port):
            reason = f"not running, but port {self.port} is taken by another process"
        return ComponentStatus(name=self.name, address=self.address, pid=pid, healthy=reason is None,
                               detail=reason or "ok", rss_mb=tree_rss_mb(pid) if pid else None,
                               log=str(self.proc.log_file))

    def _home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home

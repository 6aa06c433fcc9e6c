"""`movieaugur up|status|down`: the whole distributed system on this machine, with one command.

The local stack (infra/local: Kafka, Connect, FerretDB, Redis, NGINX) is started through its public
`Stack` API; MovieAugur's three service processes (`movieaugur serve --role commands|queries|
projectors`) are supervised here the same way the stack supervises its servers (infra/local/proc.py):

- each runs detached in its own session (it outlives `up`, and a Ctrl-C in the shell that ran `up`
  or `demo --distributed` does not reach it), with a pid file `<stack>/run/movieaugur-<role>.pid`
  and a log `<stack>/logs/movieaugur-<role>.log`;
- a pid file is trusted only if that process still runs `serve --role <role>` AND was started for
  this stack dir (`MOVIEAUGUR_STACK_DIR` in its /proc environ), so a reused pid is never signalled;
- `up` is idempotent: a running service is left alone, unless it runs with other MOVIEAUGUR_*
  settings than this shell's (then `up` refuses and says how to restart it);
- `down` sends SIGTERM to the process group, waits, then SIGKILL.

Nothing restarts a service that dies: `status` shows it (exit code 1) and `up` starts it again.

The command service may run as several processes (MOVIEAUGUR_COMMAND_WORKERS): `movieaugur-commands`,
`movieaugur-commands-2`, ... share its port (SO_REUSEPORT), so NGINX's upstream stays one address and
the kernel spreads connections among them. Why processes: a write is CPU work in one Python process
(validation, events, encoding) plus a Kafka transaction at a time per producer; two workers run two
transactions side by side (BENCHMARKS.md §8). `down` and `status` also find workers an earlier `up`
started beyond today's setting (their pid files), so lowering it never strands a process, and `up`
stops them; every command process listens with SO_REUSEPORT, so `up` can add workers beside running ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.local import ComponentStatus, Reporter, Stack, StackError
from infra.local.proc import ManagedProcess, port_open, tree_rss_mb
from kernel.settings import Settings, load_settings

#: Start order; `down` stops in this order too (writes stop first, projectors last so they finish
#: what was written).
ROLES = ("commands", "queries", "projectors")
STOP_GRACE_SECONDS = 20.0
#: Fresh connections a command worker's health check may take to reach that worker.
WORKER_PROBES = 64
_LAG = re.compile(r"^movieaugur_projection_lag_events\{([^}]*)\}\s+(\S+)", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def process_environment(pid: int) -> dict[str, str]:
    """The environment a process was started with (/proc/<pid>/environ; ours, same user)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (entry.partition(b"=") for entry in raw.split(b"\0") if entry)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def _http_get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """(status, body); raises OSError (URLError included) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class ServiceProcess(ManagedProcess):
    """A ManagedProcess whose pid file is trusted only for this stack dir (see the module doc)."""

    def __init__(self, name: str, run_dir: Path, log_dir: Path, marker: str, stack_dir: Path) -> None:
        super().__init__(name, run_dir, log_dir, marker)
        self.stack_dir = str(stack_dir)

    def pid(self) -> int | None:
        pid = super().pid()
        if pid is None or (self._popen is not None and self._popen.pid == pid):
            return pid
        return pid if process_environment(pid).get("MOVIEAUGUR_STACK_DIR") == self.stack_dir else None


@dataclass
class ServiceStatus:
    name: str
    role: str
    address: str
    pid: int | None
    healthy: bool
    detail: str
    #: Offsets not yet applied, per projection (summed over partitions); None = not exported.
    lag: dict[str, int] | None
    rss_mb: float | None
    log: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SystemStatus:
    stack_dir: str
    gateway_url: str
    components: list[ComponentStatus]
    services: list[ServiceStatus]
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.healthy for c in self.components) and all(s.healthy for s in self.services)

    def as_dict(self) -> dict[str, Any]:
        return {"stack_dir": self.stack_dir, "gateway_url": self.gateway_url, "healthy": self.healthy,
                "components": [c.as_dict() for c in self.components],
                "services": [s.as_dict() for s in self.services]}

    def lines(self) -> list[str]:
        rows = [f"stack dir: {self.stack_dir}   gateway: {self.gateway_url}"]
        for c in self.components:
            rows.append(_row(c.healthy, c.name, c.address, c.pid, c.rss_mb, c.detail))
        for s in self.services:
            lag = "-" if s.lag is None else " ".join(f"{k}={v}" for k, v in sorted(s.lag.items())) or "-"
            extra = f"  lag {lag}" if s.role != "commands" else ""
            rows.append(_row(s.healthy, s.name, s.address, s.pid, s.rss_mb, s.detail + extra))
        return rows


def _row(healthy: bool, name: str, address: str, pid: int | None, rss: float | None, detail: str) -> str:
    mem = f"{rss:.0f} MB" if rss is not None else "-"
    return f"  {'up  ' if healthy else 'DOWN'} {name:<22} {address:<42} pid {str(pid or '-'):<8} {mem:>7}  {detail}"


class Service:
    """One `movieaugur serve --role <role>` process of this stack."""

    def __init__(self, role: str, stack: Stack, report: Reporter, worker: int = 1) -> None:
        self.role = role
        self.worker = worker
        self.stack = stack
        self.report = report
        self.name = f"movieaugur-{role}" if worker == 1 else f"movieaugur-{role}-{worker}"
        #: The other command workers, which share this one's port (set by System).
        self.siblings: list[Service] = []
        cfg = stack.cfg
        self.proc = ServiceProcess(self.name, cfg.run, cfg.logs, f"serve --role {role}", cfg.root)
        self._log_offset: int | None = None  # where this process's log began, if we started it

    @property
    def port(self) -> int | None:
        return {"commands": self.stack.cfg.command_port, "queries": self.stack.cfg.query_port}.get(self.role)

    @property
    def port_variable(self) -> str:
        return "MOVIEAUGUR_COMMAND_PORT" if self.role == "commands" else "MOVIEAUGUR_QUERY_PORT"

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://{self.stack.cfg.host}:{self.port}"

    @property
    def address(self) -> str:
        return self.url or f"kafka {self.stack.bootstrap_servers} (consumer)"

    def command(self) -> list[str]:
        script = Path(sys.executable).with_name("movieaugur")  # this venv's console script
        head = [str(script)] if script.exists() else [sys.executable, "-m", "movieaugur.cli"]
        return [*head, "serve", "--role", self.role]

    def pid(self) -> int | None:
        return self.proc.pid()

    def port_shared(self) -> bool:
        """Whether another command worker of this stack runs (and so holds the shared port)."""
        return any(sibling.pid() is not None for sibling in self.siblings)

    # Probes ----------------------------------------------------------------------------------------
    def health(self) -> str | None:
        """None when healthy: HTTP roles answer /healthz with their role, projectors are alive."""
        if self.url is None:
            return None if self.pid() is not None else "not running"
        # Command workers share their port and the kernel picks one per connection: ask on fresh
        # connections until this worker's pid answers, so another worker's answer never stands in.
        pid, answered = self.pid(), set()
        for _ in range(WORKER_PROBES if self.role == "commands" else 1):
            try:
                status, body = _http_get(f"{self.url}/healthz")
            except OSError as error:
                return f"GET /healthz: {getattr(error, 'reason', error)}"
            if status != 200:
                return f"GET /healthz answered {status}"
            try:
                answer = json.loads(body or b"{}")
                roles, by = answer.get("roles"), answer.get("pid")
            except (ValueError, AttributeError):
                roles, by = None, None
            if roles != [self.role]:
                return f"port {self.port} answers as {roles}, not {self.role}"
            if self.role != "commands" or pid is None or by == pid:
                return None
            answered.add(by)
        return f"port {self.port} answers from pid {sorted(answered)}, never from this worker's {pid}"

    def ready(self) -> str | None:
        """What `up` waits for: healthy, the query service ready (reaches its log and views), the
        projectors past their start-up (their log says `projecting ...`)."""
        problem = self.health()
        if problem is not None:
            return problem
        if self.role == "queries":
            try:
                status, body = _http_get(f"{self.url}/readyz", timeout=10)
            except OSError as error:
                return f"GET /readyz: {error}"
            return None if status == 200 else f"GET /readyz answered {status}: {body[:300]!r}"
        if self.role == "projectors" and self._log_offset is not None:
            return None if b"projecting " in self._log_since_start(self._log_offset) else "no `projecting ...` line in its log yet"
        return None

    def _log_since_start(self, offset: int) -> bytes:
        try:
            with open(self.proc.log_file, "rb") as fh:
                fh.seek(offset)
                return fh.read()
        except OSError:
            return b""

    # Life cycle ------------------------------------------------------------------------------------
    def differences(self, env: dict[str, str]) -> list[str]:
        """Settings variables (MOVIEAUGUR_*) the running process got other values for; names only,
        since some are API keys."""
        pid = self.pid()
        if pid is None:
            return []
        # what a service reads; how many command workers run is `up`'s business, not a process's
        names = {f"MOVIEAUGUR_{name.upper()}" for name in Settings.model_fields} - {"MOVIEAUGUR_COMMAND_WORKERS"}
        running = {k: v for k, v in process_environment(pid).items() if k in names}
        wanted = {k: v for k, v in env.items() if k in names}
        return sorted(k for k in running.keys() | wanted.keys() if running.get(k) != wanted.get(k))

    def preflight(self, env: dict[str, str]) -> None:
        """Refuse early: a running service with other settings than `env` (it would be left alone
        and serve other data), or a port taken by a process this tool did not start."""
        pid = self.pid()
        if pid is not None:
            changed = self.differences(env)
            if changed:
                raise StackError(
                    f"{self.name} (pid {pid}) already runs with other settings ({', '.join(changed)}); "
                    f"restart it with this shell's: `movieaugur down --services-only`, then `movieaugur up`")
        elif self.port is not None and not self.port_shared() and port_open(self.stack.cfg.host, self.port):
            raise StackError(
                f"{self.name}: port {self.port} is taken by a process this tool did not start (a `movieaugur "
                f"serve` started by hand or by a test?); stop it, or set {self.port_variable} and restart the "
                f"whole system (`movieaugur down`, then `movieaugur up`) so that NGINX routes to the new port")

    def spawn(self, env: dict[str, str]) -> int | None:
        """Start the process unless it runs (call `preflight` first); returns the new pid, or None."""
        if self.pid() is not None:
            return None
        self._log_offset = self.proc.log_file.stat().st_size if self.proc.log_file.exists() else 0
        pid = self.proc.spawn(self.command(), env=env, cwd=self.stack.cfg.root)
        self.report(f"{self.name}: started pid {pid} (log {self.proc.log_file})")
        return pid

    def wait_ready(self, timeout: float) -> float:
        means = "its log says `projecting ...`" if self.url is None else "GET /healthz = 200"
        waited = self.proc.wait_ready(self.ready, timeout, means)
        self.report(f"{self.name}: ready at {self.address} (pid {self.pid()})")
        return waited

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> bool:
        pid = self.pid()
        if pid is None:
            self.proc.pid_file.unlink(missing_ok=True)
            return False
        t0 = time.monotonic()
        self.proc.stop(grace)
        self.report(f"{self.name}: stopped pid {pid} in {time.monotonic() - t0:.1f}s")
        return True

    def status(self, lags: dict[str, int] | None) -> ServiceStatus:
        pid = self.pid()
        problem = self.health() if pid is not None else "not running (start it with `movieaugur up`)"
        if pid is None and self.port is not None and not self.port_shared() and port_open(self.stack.cfg.host, self.port):
            problem = f"not running under this tool, but port {self.port} is taken by another process"
        return ServiceStatus(name=self.name, role=self.role, address=self.address, pid=pid,
                             healthy=problem is None, detail=problem or "ok", lag=lags,
                             rss_mb=tree_rss_mb(pid) if pid else None, log=str(self.proc.log_file))


class System:
    """The local stack plus MovieAugur's three services, started, inspected and stopped as one."""

    def __init__(self, stack: Stack | None = None, report: Reporter | None = None,
                 command_workers: int | None = None) -> None:
        self.report = report or Reporter()
        self.stack = stack or Stack(report=self.report)
        self.command_workers = load_settings().command_workers if command_workers is None else command_workers
        workers = max(self.command_workers, *command_worker_numbers(self.stack.cfg.run))
        commands = [Service("commands", self.stack, self.report, worker) for worker in range(1, workers + 1)]
        for worker in commands:
            worker.siblings = [other for other in commands if other is not worker]
        self.services = commands + [Service(role, self.stack, self.report) for role in ROLES if role != "commands"]

    def wanted(self, service: Service) -> bool:
        """Whether today's settings run this service (a command worker beyond the count does not)."""
        return service.role != "commands" or service.worker <= self.command_workers

    def service(self, role: str) -> Service:
        return next(s for s in self.services if s.role == role)

    @property
    def gateway_url(self) -> str:
        return self.stack.gateway_url

    def service_environment(self) -> dict[str, str]:
        """This shell's environment, pointed at the stack: distributed mode, its addresses and ports."""
        cfg = self.stack.cfg
        return {
            **os.environ,
            "MOVIEAUGUR_MODE": "distributed",
            "MOVIEAUGUR_KAFKA_BOOTSTRAP": self.stack.bootstrap_servers,
            "MOVIEAUGUR_REDIS_URL": self.stack.redis_url,
            "MOVIEAUGUR_MONGO_URL": self.stack.mongo_url,
            "MOVIEAUGUR_CONNECT_URL": self.stack.connect_url,
            "MOVIEAUGUR_HOST": cfg.host,  # NGINX's upstreams are on the stack's host
            "MOVIEAUGUR_COMMAND_PORT": str(cfg.command_port),
            "MOVIEAUGUR_QUERY_PORT": str(cfg.query_port),
            "MOVIEAUGUR_STACK_DIR": str(cfg.root),  # also how a pid file is recognised as ours
            "PYTHONUNBUFFERED": "1",
        }

    def prepare(self) -> list[str]:
        """MovieAugur's topics and Connect sinks for this shell's topic prefix (what `stack up` adds)."""
        from movieaugur.operations import prepare_distributed
        from movieaugur.stack_settings import stack_settings

        names = asyncio.run(prepare_distributed(stack_settings(self.stack)))
        self.report(f"topics ready; connectors registered: {', '.join(names)}")
        return names

    def up(self) -> float:
        """Idempotent: the stack, the topics and sinks, then every service that is not running;
        waits until each answers and the gateway reaches the query service. Returns seconds."""
        t0 = time.monotonic()
        env = self.service_environment()
        for service in self.services:  # before anything is started or created in vain
            if self.wanted(service):
                service.preflight(env)
        self.stack.up()
        self.prepare()
        for extra in (s for s in self.services if not self.wanted(s)):  # the setting went down
            extra.stop()
        wanted = [s for s in self.services if self.wanted(s)]
        started = [s for s in wanted if s.spawn(env) is not None]  # all at once: start-ups overlap
        for service in wanted:
            if service in started:
                service.wait_ready(self.stack.cfg.timeout)
            else:
                problem = service.ready()
                if problem is not None:  # running but not (yet) healthy: wait as for a fresh one
                    self.report(f"{service.name}: pid {service.pid()} running but not ready ({problem}); waiting")
                    service.wait_ready(self.stack.cfg.timeout)
                else:
                    self.report(f"{service.name}: already running (pid {service.pid()}) at {service.address}")
        self._check_gateway()
        took = time.monotonic() - t0
        self.report(f"system up in {took:.1f}s; gateway {self.gateway_url}")
        return took

    def _check_gateway(self, timeout: float = 15.0) -> None:
        """GET <gateway>/readyz goes through NGINX to the query service: proves the route and port."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, body = _http_get(f"{self.gateway_url}/readyz", timeout=10)
                problem = None if status == 200 else f"answered {status}: {body[:200]!r}"
            except OSError as error:
                problem = str(error)
            if problem is None:
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"NGINX at {self.gateway_url} does not reach the query service on port {self.stack.cfg.query_port} "
                    f"(GET /readyz {problem}); it may have been started with other MOVIEAUGUR_*_PORT values: "
                    f"`movieaugur down`, then `movieaugur up` (see {self.stack.cfg.logs})")
            time.sleep(0.5)

    def down(self, services_only: bool = False) -> list[str]:
        """Stop the services (SIGTERM, then SIGKILL after a grace period), then the stack unless
        `services_only`. Returns the names of the services stopped."""
        stopped = [s.name for s in self.services if s.stop()]
        if not stopped:
            self.report("no MovieAugur service was running")
        if not services_only:
            self.stack.down()
        return stopped

    def lags(self) -> tuple[dict[str, int], dict[str, int]] | None:
        """Projector lag from the query service's /metrics, summed over partitions: (projector-kept
        views, the query service's own local views). None when the service or the metric is absent."""
        url = self.service("queries").url
        try:
            status, body = _http_get(f"{url}/metrics", timeout=15)
        except OSError:
            return None
        if status != 200:
            return None
        views: dict[str, int] = {}
        local: dict[str, int] = {}
        found = False
        for match in _LAG.finditer(body.decode(errors="replace")):
            labels = dict(_LABEL.findall(match[1]))
            name = labels.get("projection", "?")
            target = local if name.startswith("local-") else views
            try:
                target[name] = target.get(name, 0) + int(float(match[2]))
            except ValueError:
                continue
            found = True
        return (views, local) if found else None

    def status(self) -> SystemStatus:
        components = self.stack.status()
        lags = self.lags() if self.service("queries").pid() is not None else None
        by_role = {"projectors": lags[0] if lags else None, "queries": lags[1] if lags else None}
        services = [s.status(by_role.get(s.role)) for s in self.services
                    if self.wanted(s) or s.pid() is not None]
        return SystemStatus(str(self.stack.cfg.root), self.gateway_url, components, services)

    def stopped(self) -> list[str]:
        """Names of the services whose processes are gone (for watchers such as the demo)."""
        return [s.name for s in self.services if self.wanted(s) and s.pid() is None]


def command_worker_numbers(run_dir: Path) -> list[int]:
    """Numbers of the command workers with a pid file (1 is `movieaugur-commands`)."""
    numbers = [1]
    for pid_file in run_dir.glob("movieaugur-commands-*.pid"):
        suffix = pid_file.stem.rsplit("-", 1)[1]
        if suffix.isdigit():
            numbers.append(int(suffix))
    return numbers


def service_pids(stack_dir: Path) -> dict[str, int | None]:
    """The pids in the services' pid files (alive or not), for tests and scripts."""
    pids: dict[str, int | None] = {}
    for role in ROLES:
        try:
            pids[role] = int((stack_dir / "run" / f"movieaugur-{role}.pid").read_text().strip())
        except (OSError, ValueError):
            pids[role] = None
    return pids


__all__ = ["ROLES", "Service", "command_worker_numbers", "process_environment", "ServiceStatus", "System", "SystemStatus", "service_pids"]

"""redis-server from Debian, run from the stack dir on its own port (not the system service)."""

from __future__ import annotations

from .component import Component
from .fetch import ensure_apt_binaries, which_system
from .probes import probe_redis
from .proc import StackError


class RedisServer(Component):
    name = "redis"
    env_port = "MOVIEAUGUR_REDIS_PORT"
    ready_means = "PING -> PONG"

    @property
    def port(self) -> int:
        return self.cfg.redis_port

    @property
    def url(self) -> str:
        return self.cfg.redis_url

    @property
    def address(self) -> str:
        return self.url

    def marker(self) -> str:
        # redis rewrites its process title to "redis-server 127.0.0.1:<port>" (dropping our args) a
        # moment after start, so only the port number is in both the original and the new title.
        return str(self.cfg.redis_port)

    def obtain(self) -> None:
        ensure_apt_binaries(self.cfg, self.report)

    def prepare(self) -> None:
        (self._home() / "data").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        binary = which_system("redis-server")
        if binary is None:
            raise StackError("redis-server not found (apt-get install -y redis-server)")
        # Views in Redis are rebuilt by projection from the log, so no persistence: faster, no fsync.
        return [binary, "--port", str(self.port), "--bind", self.cfg.host, "--dir", str(self.home / "data"),
                "--daemonize", "no", "--save", "", "--appendonly", "no", "--protected-mode", "no",
                "--logfile", "", "--loglevel", "warning"]

    def probe(self) -> str | None:
        return probe_redis(self.cfg.host, self.port)

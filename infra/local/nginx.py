"""The NGINX gateway: routes writes to the command service, reads to the query service, caches GETs.

Runs with the stack dir as prefix (`-p`), its own error log (`-e`) and `daemon off`, so it writes
nothing under /etc or /var and its master pid is the one we spawned.
"""

from __future__ import annotations

import os
import pwd
from string import Template

from .component import Component
from .config import INFRA_DIR
from .fetch import ensure_apt_binaries, which_system
from .probes import probe_http_ok
from .proc import StackError, run_logged

#: Generous for tests that fire many writes from 127.0.0.1; production tunes its own.
WRITE_RATE = "200r/s"
WRITE_BURST = 400


class NginxGateway(Component):
    name = "nginx"
    env_port = "MOVIEAUGUR_GATEWAY_PORT"
    ready_means = "GET /healthz = 200"

    @property
    def port(self) -> int:
        return self.cfg.gateway_port

    @property
    def url(self) -> str:
        return self.cfg.gateway_url

    @property
    def address(self) -> str:
        return self.url

    @property
    def conf_file(self):
        return self.home / "conf" / "gateway.conf"

    def obtain(self) -> None:
        ensure_apt_binaries(self.cfg, self.report)

    def render_conf(self) -> str:
        # As root, nginx would drop worker privileges to `nobody`, who cannot write the cache under
        # a root-owned stack dir; run workers as the invoking user instead.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else "# (not root: no user directive)"
        template = Template((INFRA_DIR / "nginx" / "gateway.template.conf").read_text())
        return template.substitute(user_directive=user, host=self.cfg.host, port=self.port,
                                   command_port=self.cfg.command_port, query_port=self.cfg.query_port,
                                   write_rate=WRITE_RATE, write_burst=WRITE_BURST, prefix=self.home)

    def _binary(self) -> str:
        binary = which_system("nginx")
        if binary is None:
            raise StackError("nginx not found (apt-get install -y nginx)")
        return binary

    def _args(self) -> list[str]:
        return [self._binary(), "-p", f"{self.home}/", "-e", "logs/error.log", "-c", "conf/gateway.conf"]

    def prepare(self) -> None:
        home = self._home()
        for sub in ("conf", "logs", "run", "tmp", "cache"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(self.render_conf())
        # Fail with nginx's own words if the rendered config is wrong (`nginx -t`).
        run_logged(self._args() + ["-t", "-q", "-g", "daemon off;"], self.proc.log_file, timeout=30)

    def command(self) -> list[str]:
        return self._args() + ["-g", "daemon off;"]

    def probe(self) -> str | None:
        return probe_http_ok(self.url + "/healthz")

"""FerretDB 1.24: a MongoDB-wire server (MongoDB itself is not in Debian).

Backend (MOVIEAUGUR_FERRETDB_BACKEND):
- `postgresql` (default): the stack's own PostgreSQL (infra/local/postgres.py), started before it.
  Filters `{field: scalar}` are pushed down to PostgreSQL and `_id` equality uses an index, so
  lookups by `_id` and the Connect sink's upserts stay fast as collections grow.
- `sqlite`: one SQLite file per database in `<stack>/ferretdb/data`; no server. Only a filter that is
  exactly `{_id: <string|ObjectId>}` uses an index; everything else reads the whole collection.

Neither backend pushes `$in` or `$or` down: `find({_id: {$in: [...]}})` reads every document of the
collection. No replica-set name: FerretDB does not do transactions, and a replica-set name would make
drivers expect them.
"""

from __future__ import annotations

import os

from .component import Component
from .config import FERRETDB_BACKENDS
from .fetch import ensure_ferretdb
from .postgres import PostgresServer
from .probes import probe_mongo
from .proc import StackError, cmdline


class FerretDB(Component):
    name = "ferretdb"
    env_port = "MOVIEAUGUR_FERRETDB_PORT"
    ready_means = "a MongoDB ping"

    @property
    def port(self) -> int:
        return self.cfg.ferretdb_port

    @property
    def url(self) -> str:
        return self.cfg.mongo_url

    @property
    def address(self) -> str:
        return self.url

    @property
    def binary(self):
        return self.cfg.downloads / "ferretdb" / "bin" / "ferretdb"

    @property
    def backend(self) -> str:
        backend = self.cfg.ferretdb_backend
        if backend not in FERRETDB_BACKENDS:
            raise StackError(f"MOVIEAUGUR_FERRETDB_BACKEND={backend!r}: expected one of {', '.join(FERRETDB_BACKENDS)}")
        return backend

    def obtain(self) -> None:
        ensure_ferretdb(self.cfg, self.report)

    def depends_ready(self) -> None:
        if self.backend == "postgresql":
            reason = PostgresServer(self.cfg, self.report).probe(database="ferretdb")
            if reason:
                raise StackError(f"ferretdb needs PostgreSQL at {self.cfg.postgres_url}: {reason}")

    def prepare(self) -> None:
        for sub in ("data", "state"):
            (self._home() / sub).mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        if self.backend == "postgresql":
            storage = ["--handler=postgresql", f"--postgresql-url={self.cfg.postgres_url}"]
        else:
            storage = ["--handler=sqlite", f"--sqlite-url=file:{self.home / 'data'}/"]
        return [str(self.binary), *storage, f"--listen-addr={self.cfg.host}:{self.port}",
                f"--state-dir={self.home / 'state'}", "--debug-addr=-", "--telemetry=disable", "--log-level=warn"]

    def running_backend(self) -> str | None:
        """The handler of the running FerretDB (from its command line), None if it is not running."""
        pid = self.pid()
        if pid is None:
            return None
        for arg in cmdline(pid).split():
            if arg.startswith("--handler="):
                return arg.split("=", 1)[1]
        return None

    def outdated(self) -> bool:
        """The running process's binary was replaced since it started (a rebuild, e.g. new patches)."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            return os.readlink(f"/proc/{pid}/exe").endswith(" (deleted)")
        except OSError:
            return False

    def start(self) -> float:
        """As Component.start, but a FerretDB running on the other backend, or from a binary rebuilt
        since it started, is restarted."""
        running = self.running_backend()
        if running is not None and running != self.backend:
            self.report(f"ferretdb: running with the {running} backend, MOVIEAUGUR_FERRETDB_BACKEND={self.backend}: restarting")
            self.stop()
        elif running is not None and self.outdated():
            self.report("ferretdb: its binary was rebuilt since it started: restarting")
            self.stop()
        return super().start()

    def probe(self) -> str | None:
        return probe_mongo(self.url)

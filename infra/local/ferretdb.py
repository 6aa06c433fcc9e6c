"""FerretDB 1.24 with the SQLite handler: a MongoDB-wire server (MongoDB itself is not in Debian).

Data lives in `<stack>/ferretdb/data` (one SQLite file per database). No replica-set name: FerretDB
does not do transactions, and a replica-set name would make drivers expect them.
"""

from __future__ import annotations

from .component import Component
from .fetch import ensure_ferretdb
from .probes import probe_mongo


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
        return self.cfg.root / "ferretdb" / "bin" / "ferretdb"

    def obtain(self) -> None:
        ensure_ferretdb(self.cfg, self.report)

    def prepare(self) -> None:
        for sub in ("data", "state"):
            (self._home() / sub).mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [str(self.binary), "--handler=sqlite", f"--sqlite-url=file:{self.home / 'data'}/",
                f"--listen-addr={self.cfg.host}:{self.port}", f"--state-dir={self.home / 'state'}",
                "--debug-addr=-", "--telemetry=disable", "--log-level=warn"]

    def probe(self) -> str | None:
        return probe_mongo(self.url)

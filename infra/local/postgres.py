"""PostgreSQL from Debian as FerretDB's storage: a cluster of the stack's own, never the system service.

Why: FerretDB's SQLite handler reads every document of a collection for anything but a lone `_id`
equality, and its write path slowed with collection size (docs/stack-notes.md, "FerretDB on
PostgreSQL"). On PostgreSQL FerretDB pushes `{field: scalar}` filters down as
`_jsonb->'field' @> '<value>'` (the key a bind parameter). FerretDB's own `_id` index is a btree on
`(_jsonb->'_id')`, which that operator cannot use, so every `_id` lookup and every upsert by `_id`
would scan the table. This cluster therefore:

- keeps an event trigger that gives each collection table FerretDB creates a GIN index
  (`jsonb_path_ops`) on `(_jsonb->'_id')`, which `@>` can use (tables made earlier are indexed
  at start); FerretDB does not list it and never touches it. `fastupdate = off`: with GIN's default
  pending list every lookup also reads all entries not yet merged into the tree (up to 4 MB), which
  made a lookup ~0.3 ms during a bulk load instead of a few µs;
- runs with `plan_cache_mode=force_custom_plan`: FerretDB's driver (pgx) prepares statements, and a
  generic plan, in which the key is still `$1`, cannot match the index expression. With custom
  plans the key is a constant when planning, so the index is chosen whatever the table size was when
  the statement was first prepared.

Other settings favour a throw-away local store: `synchronous_commit=off` (a crash may lose the last
few hundred ms of commits, never consistency; the Connect sink rewrites from Kafka), no JIT, TCP on
127.0.0.1 only (no Unix socket: no /var/run, no socket-path length limit), trust authentication (like
the stack's Redis and FerretDB: loopback only, no password).

Run as root (as in CI), the server runs as the `postgres` account that Debian's package creates,
because postgres refuses to run as root; the data folder under the stack dir is owned by it. If that
account cannot enter the stack dir (e.g. it is under /root, mode 700), the cluster goes to
/var/tmp/movieaugur-postgres/stack-<hash of the stack dir> instead, tied to the stack dir by a token
so that a fresh stack dir gets a fresh cluster; `<stack>/postgres/WHERE` says so.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import uuid
from pathlib import Path

from .component import Component, ComponentStatus
from .config import POSTGRES_DATABASE, POSTGRES_ROLE, StackConfig
from .fetch import ensure_postgres, postgres_bin_dir
from .pgwire import PgError, pg_query
from .proc import Reporter, StackError, cmdline, pid_alive, run_logged

#: Event trigger + backfill that give every FerretDB collection table a GIN index on its `_id`.
#: Idempotent; run in FerretDB's database at every start. `is_collection`: a plain table with a jsonb
#: `_jsonb` column, not FerretDB's own `_ferretdb_*` metadata tables, outside PostgreSQL's schemas.
BOOTSTRAP_SQL = r"""
CREATE OR REPLACE FUNCTION public.movieaugur_is_collection(rel oid) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
  SELECT EXISTS (
    SELECT 1
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = '_jsonb' AND NOT a.attisdropped
                         AND a.atttypid = 'jsonb'::regtype
     WHERE c.oid = rel AND c.relkind = 'r' AND c.relname NOT LIKE '\_ferretdb\_%'
       AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema')
$fn$;

CREATE OR REPLACE FUNCTION public.movieaugur_index_id(rel regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> ''_id'') jsonb_path_ops) '
                 'WITH (fastupdate = off)',
                 'movieaugur_idgin_' || rel::oid, rel);
END
$fn$;

CREATE OR REPLACE FUNCTION public.movieaugur_on_create_table() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN SELECT objid FROM pg_event_trigger_ddl_commands()
              WHERE command_tag = 'CREATE TABLE' AND object_type = 'table'
  LOOP
    IF public.movieaugur_is_collection(cmd.objid) THEN
      PERFORM public.movieaugur_index_id(cmd.objid::regclass);
    END IF;
  END LOOP;
END
$fn$;

DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'movieaugur_id_index') THEN
    CREATE EVENT TRIGGER movieaugur_id_index ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
      EXECUTE FUNCTION public.movieaugur_on_create_table();
  END IF;
END
$do$;

SELECT count(public.movieaugur_index_id(c.oid::regclass))
  FROM pg_class c
 WHERE public.movieaugur_is_collection(c.oid)
   AND NOT EXISTS (SELECT 1 FROM pg_class i WHERE i.relname = 'movieaugur_idgin_' || c.oid
                                              AND i.relnamespace = c.relnamespace);
"""

#: Where clusters go when the server's account cannot enter the stack dir (see PostgresServer.home).
OUTSIDE_ROOT = Path("/var/tmp/movieaugur-postgres")

#: Server settings (`-c name=value`); MOVIEAUGUR_POSTGRES_SETTINGS adds/overrides.
SERVER_SETTINGS = {
    "unix_socket_directories": "",
    "plan_cache_mode": "force_custom_plan",
    "synchronous_commit": "off",
    "jit": "off",
    "log_checkpoints": "off",
    "log_line_prefix": "%m [%p] ",
    "max_connections": "100",  # FerretDB's pool is at most 50 (its default pool_max_conns)
}


class PostgresServer(Component):
    name = "postgres"
    env_port = "MOVIEAUGUR_POSTGRES_PORT"
    ready_means = "a PostgreSQL connection answering SELECT 1"
    # SIGINT to the postmaster alone = "fast shutdown": it ends its backends and writes a checkpoint.
    # (SIGTERM would wait for clients to leave; signalling the whole group would bypass the postmaster.)
    stop_signal = signal.SIGINT
    stop_group = False

    def __init__(self, cfg: StackConfig, report: Reporter | None = None) -> None:
        self._cluster_home: Path | None = None  # before super(): the process marker needs `home`
        super().__init__(cfg, report)

    @property
    def port(self) -> int:
        return self.cfg.postgres_port

    @property
    def url(self) -> str:
        return self.cfg.postgres_url

    @property
    def address(self) -> str:
        return self.url

    @property
    def home(self) -> Path:
        """Where the cluster lives: `<stack>/postgres`, unless the server's account (root's stand-in)
        cannot walk down to the stack dir (say it is under /root): then a folder of its own under
        /var/tmp, tied to this stack dir by a token (see `prepare`)."""
        if self._cluster_home is None:
            default = self.cfg.root / self.name
            account = self._account()
            if account is None or self._blocked_at(default, account) is None:
                self._cluster_home = default
            else:
                digest = hashlib.sha256(str(self.cfg.root).encode()).hexdigest()[:12]
                self._cluster_home = OUTSIDE_ROOT / f"stack-{digest}"
        return self._cluster_home

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def marker(self) -> str:
        return str(self.data_dir)

    def run_as(self) -> str | None:
        return self.cfg.postgres_os_user if os.geteuid() == 0 else None

    def obtain(self) -> None:
        ensure_postgres(self.cfg, self.report)

    def _bin(self, program: str) -> str:
        folder = postgres_bin_dir()
        if folder is None:
            raise StackError("PostgreSQL server programs not found (apt-get install -y postgresql)")
        return str(folder / program)

    # Preparing the cluster ---------------------------------------------------------------------------
    def _account(self) -> pwd.struct_passwd | None:
        user = self.run_as()
        if user is None:
            return None
        try:
            return pwd.getpwnam(user)
        except KeyError as exc:
            raise StackError(f"postgres refuses to run as root and account {user!r} does not exist "
                             f"(Debian's postgresql package creates `postgres`; or set MOVIEAUGUR_POSTGRES_OS_USER)") from exc

    @staticmethod
    def _blocked_at(path: Path, account: pwd.struct_passwd) -> Path | None:
        """The first existing folder above `path` that `account` may not enter, or None."""
        for folder in reversed(path.parents):
            try:
                st = folder.stat()
            except FileNotFoundError:
                return None  # created below by root, mode 755
            if st.st_mode & 0o001 or (st.st_uid == account.pw_uid and st.st_mode & 0o100) \
                    or (st.st_gid == account.pw_gid and st.st_mode & 0o010):
                continue
            return folder
        return None

    def _claim_outside_home(self, account: pwd.struct_passwd) -> None:
        """A cluster outside the stack dir belongs to the stack dir whose token it carries: a fresh
        stack dir (no token: `rm -rf .stack`) must not find the old one's FerretDB data."""
        token_file = self.cfg.root / self.name / "cluster-token"
        theirs = self.home / "cluster-token"
        ours = token_file.read_text().strip() if token_file.exists() else ""
        if not ours or not theirs.exists() or theirs.read_text().strip() != ours:
            if self.home.exists():
                shutil.rmtree(self.home)
            ours = uuid.uuid4().hex
            token_file.parent.mkdir(parents=True, exist_ok=True)
            token_file.write_text(ours + "\n")
            (token_file.parent / "WHERE").write_text(f"the cluster is in {self.home} (the postgres account cannot "
                                                    f"enter {self._blocked_at(self.cfg.root / self.name, account)})\n")
        OUTSIDE_ROOT.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.home.mkdir(mode=0o700, exist_ok=True)
        theirs.write_text(ours + "\n")

    def _chown_tree(self, path: Path, account: pwd.struct_passwd) -> None:
        os.chown(path, account.pw_uid, account.pw_gid)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), account.pw_uid, account.pw_gid, follow_symlinks=False)

    def _remove_stale_lock(self) -> None:
        """A postmaster.pid left by a killed server names a pid that may belong to another process by
        now; postgres, running unprivileged, cannot tell and would refuse to start. We only get here
        when our pid file says the server is not running, so the lock is stale unless its pid is a
        live postgres on this very data folder."""
        lock = self.data_dir / "postmaster.pid"
        try:
            pid = int(lock.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if pid_alive(pid) and str(self.data_dir) in cmdline(pid):
            raise StackError(f"a postgres (pid {pid}) not started by this stack runs on {self.data_dir}")
        lock.unlink(missing_ok=True)

    def _major(self) -> str:
        folder = postgres_bin_dir()
        return folder.parent.name if folder is not None and folder.parent.name.isdigit() else ""

    def prepare(self) -> None:
        account = self._account()
        if account is not None and self.home != self.cfg.root / self.name:
            self.report(f"postgres: {account.pw_name} cannot reach {self.cfg.root}; the cluster lives in {self.home}")
            self._claim_outside_home(account)
        home = self._home()
        if account is not None and home.stat().st_uid != account.pw_uid:
            self._chown_tree(home, account)
        version_file = self.data_dir / "PG_VERSION"
        if not version_file.exists():
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)  # a half-made cluster (initdb cleans up after itself, but a kill does not)
            self.report(f"postgres: initdb {self.data_dir}")
            run_logged([self._bin("initdb"), "-D", str(self.data_dir), "-U", POSTGRES_ROLE, "--auth=trust",
                        "--encoding=UTF8", "--locale=C", "--no-instructions"],
                       self.cfg.logs / "postgres-initdb.log", cwd=home, timeout=300, user=self.run_as())
        else:
            made_by, major = version_file.read_text().strip(), self._major()
            if major and made_by != major:
                raise StackError(f"{self.data_dir} was made by PostgreSQL {made_by} but the server is {major}: "
                                 f"remove {self.data_dir} (FerretDB's data; Connect sinks can refill it from Kafka)")
            if account is not None and self.data_dir.stat().st_uid != account.pw_uid:
                self._chown_tree(home, account)
            self._remove_stale_lock()

    def settings(self) -> dict[str, str]:
        out = dict(SERVER_SETTINGS, listen_addresses=self.cfg.host, port=str(self.port))
        for item in self.cfg.postgres_settings.split():
            name, sep, value = item.partition("=")
            if not sep:
                raise StackError(f"MOVIEAUGUR_POSTGRES_SETTINGS: {item!r} is not name=value")
            out[name] = value
        return out

    def command(self) -> list[str]:
        cmd = [self._bin("postgres"), "-D", str(self.data_dir)]
        for name, value in self.settings().items():
            cmd += ["-c", f"{name}={value}"]
        return cmd

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        account = self._account()
        if account is not None:
            env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
        return env

    # Readiness and bootstrap -------------------------------------------------------------------------
    def query(self, sql: str, database: str = POSTGRES_DATABASE, timeout: float = 10.0) -> list[tuple[str | None, ...]]:
        """Run SQL on the stack's cluster (tests and tools; FerretDB's data is in schema = Mongo database)."""
        return pg_query(self.cfg.host, self.port, POSTGRES_ROLE, database, sql, timeout=timeout)

    def probe(self, database: str = "postgres") -> str | None:
        try:
            rows = pg_query(self.cfg.host, self.port, POSTGRES_ROLE, database, "SELECT 1", timeout=2.0)
        except PgError as exc:
            return str(exc)  # e.g. 57P03 "the database system is starting up"
        except OSError as exc:
            return f"connect {self.cfg.host}:{self.port}: {exc}"
        return None if rows == [("1",)] else f"SELECT 1 answered {rows!r}"

    def bootstrap(self) -> None:
        """FerretDB's database and the `_id` index trigger (idempotent; a few ms when already done)."""
        exists = self.query(f"SELECT 1 FROM pg_database WHERE datname = '{POSTGRES_DATABASE}'", database="postgres")
        if not exists:
            try:
                self.query(f'CREATE DATABASE "{POSTGRES_DATABASE}"', database="postgres")
                self.report(f"postgres: created database {POSTGRES_DATABASE}")
            except PgError as exc:
                if exc.code != "42P04":  # created meanwhile by another `up`
                    raise
        try:
            self.query(BOOTSTRAP_SQL)
        except PgError as exc:
            raise StackError(f"postgres: bootstrap SQL failed: {exc}") from exc

    def start(self) -> float:
        took = super().start()
        self.bootstrap()
        return took

    def status(self) -> ComponentStatus:
        st = super().status()
        if st.healthy:
            reason = self.probe(POSTGRES_DATABASE)
            if reason:
                st.healthy, st.detail = False, f"database {POSTGRES_DATABASE}: {reason}"
        return st

"""Obtaining the components from the only sources our machines reach: Maven Central, the Go module
proxy and Debian's apt (redis-server, nginx, postgresql). Each step is idempotent (a marker file or an existing binary means done),
logs to `<stack>/logs/obtain.log`, and reports its elapsed time, because the first run takes minutes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from .config import INFRA_DIR, StackConfig
from .proc import Reporter, StackError, run_logged

#: Pinned so the command works with Maven 3.8's old default (2.8 lacks `copy -Dartifact`).
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MONGO_SINK_CLASS = "com.mongodb.kafka.connect.MongoSinkConnector"


def obtain_log(cfg: StackConfig) -> Path:
    return cfg.logs / "obtain.log"


def _mvn(cfg: StackConfig) -> list[str]:
    if shutil.which("mvn") is None:
        raise StackError("mvn not found: install Maven (apt-get install -y maven) and a JDK 17+")
    return ["mvn", "-B", "-q", f"-Dmaven.repo.local={cfg.maven_repo}"]


def _step(report: Reporter, title: str):
    """Context-free timing helper: returns a function that reports completion."""
    t0 = time.monotonic()
    report(f"obtain: {title} ...")

    def done(extra: str = "") -> None:
        report(f"obtain: {title} done in {time.monotonic() - t0:.1f}s{(' ' + extra) if extra else ''}")
    return done


def kafka_lib_dir(cfg: StackConfig) -> Path:
    return cfg.downloads / "kafka" / "lib"


def ensure_kafka_lib(cfg: StackConfig, report: Reporter) -> Path:
    """Copy the Kafka broker/tools/Connect jars (infra/kafka/pom.xml) into one flat folder."""
    lib = kafka_lib_dir(cfg)
    marker = lib / f".complete-{cfg.kafka_version}"
    if marker.exists():
        return lib
    done = _step(report, f"Kafka {cfg.kafka_version} jars from Maven Central into {lib}")
    if lib.exists():
        shutil.rmtree(lib)  # a half-finished or other-version copy would mix jar versions
    run_logged(_mvn(cfg) + ["-f", str(INFRA_DIR / "kafka" / "pom.xml"), f"-Dkafka.version={cfg.kafka_version}",
                            f"{DEPENDENCY_PLUGIN}:copy-dependencies", "-DincludeScope=runtime",
                            f"-DoutputDirectory={lib}"], obtain_log(cfg))
    if not any(lib.glob("kafka_2.13-*.jar")):
        raise StackError(f"Maven finished but {lib} has no kafka_2.13 jar; see {obtain_log(cfg)}")
    marker.write_text("ok\n")
    done(f"({len(list(lib.glob('*.jar')))} jars)")
    return lib


def plugin_root(cfg: StackConfig) -> Path:
    """Connect's plugin.path: one sub-folder per plugin (each gets its own class loader)."""
    return cfg.downloads / "connect" / "plugins"


def ensure_mongo_sink(cfg: StackConfig, report: Reporter) -> Path:
    """The shaded ('all' classifier) MongoDB connector jar: it carries its own driver, and nothing
    else, so it cannot drag a second kafka-clients onto the worker."""
    folder = plugin_root(cfg) / "mongo-kafka-connect"
    jar = folder / f"mongo-kafka-connect-{cfg.mongo_connector_version}-all.jar"
    if jar.exists():
        return jar
    done = _step(report, f"MongoDB sink connector {cfg.mongo_connector_version} (all) into {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jar"):
        old.unlink()
    run_logged(_mvn(cfg) + [f"{DEPENDENCY_PLUGIN}:copy",
                            f"-Dartifact=org.mongodb.kafka:mongo-kafka-connect:{cfg.mongo_connector_version}:jar:all",
                            f"-DoutputDirectory={folder}"], obtain_log(cfg), cwd=cfg.downloads)
    if not jar.exists():
        raise StackError(f"expected {jar} after Maven; see {obtain_log(cfg)}")
    done()
    return jar


def go_env(cfg: StackConfig) -> dict[str, str]:
    """Module and build caches inside the stack dir; -modcacherw so `rm -rf .stack` just works."""
    env = dict(os.environ)
    env.update(GOBIN=str(cfg.downloads / "ferretdb" / "bin"), GOMODCACHE=str(cfg.downloads / "go" / "mod"),
               GOCACHE=str(cfg.downloads / "go" / "cache"), GOFLAGS="-modcacherw", GOTOOLCHAIN="local",
               CGO_ENABLED="0")
    return env


#: Fixes applied to FerretDB's source before it is built: (file, upstream text, replacement). Each
#: upstream text must occur exactly once, else the build stops (another version needs its own check).
#:
#: The `update` command handler opens one query per update statement and defers closing it to the end
#: of the whole command (`defer` inside the loop). A matched statement's query is never read to its
#: end, so it keeps its backend connection until the command ends: an update command with more
#: matched statements than the backend's pool (PostgreSQL 50, SQLite 100) waits forever for a
#: connection, and FerretDB then holds the whole pool. Kafka Connect's MongoDB sink sends each polled
#: batch (up to 500 records) as one update command, so re-delivering or updating >= 50 existing
#: documents hung FerretDB (measured on both backends; docs/stack-notes.md). The fix closes each
#: statement's query as soon as that statement is done.
FERRETDB_PATCHES: list[tuple[str, str, str]] = [
    ("internal/handler/msg_update.go",
     """\t\tcloser := iterator.NewMultiCloser()
\t\tdefer closer.Close()

\t\tcloser.Add(res.Iter)

\t\titer := common.FilterIterator(res.Iter, closer, u.Filter)

\t\tif !u.Multi {
\t\t\titer = common.LimitIterator(iter, closer, 1)
\t\t}

\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)
\t\tif err != nil {
""",
     """\t\tcloser := iterator.NewMultiCloser()

\t\tcloser.Add(res.Iter)

\t\titer := common.FilterIterator(res.Iter, closer, u.Filter)

\t\tif !u.Multi {
\t\t\titer = common.LimitIterator(iter, closer, 1)
\t\t}

\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)

\t\t// MovieAugur's build: release this statement's query (and its backend connection) now, not
\t\t// at the end of the whole command: a command with many matched statements exhausted the pool.
\t\tcloser.Close()

\t\tif err != nil {
"""),
]
#: Part of the build stamp, so a binary built without the current patches is rebuilt.
FERRETDB_PATCH_LEVEL = "p1"


def patch_ferretdb(src: Path) -> None:
    for name, old, new in FERRETDB_PATCHES:
        path = src / name
        text = path.read_text()
        if text.count(old) != 1:
            raise StackError(f"FerretDB patch does not apply to {path} ({text.count(old)} matches): this version "
                             f"needs its patches checked (infra/local/fetch.py FERRETDB_PATCHES)")
        path.write_text(text.replace(old, new))


def ensure_ferretdb(cfg: StackConfig, report: Reporter) -> Path:
    """Build FerretDB from the Go module proxy (pure Go; SQLite through modernc, no cgo).

    Why not plain `go install .../cmd/ferretdb@v1.24.2`: it builds, but the binary panics at start
    ("Invalid build/version/version.txt file content") because the module zip lacks the generated
    version.txt that FerretDB embeds. So: download the module, copy its source, write version.txt,
    apply FERRETDB_PATCHES, `go build` it. Go caches (~1 GB) are deleted afterwards; only the 45 MB
    binary is kept.
    """
    binary = cfg.downloads / "ferretdb" / "bin" / "ferretdb"
    stamp = binary.with_name(f".version-{cfg.ferretdb_version}-{FERRETDB_PATCH_LEVEL}")
    if binary.exists() and stamp.exists():
        return binary
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise StackError("go not found: FerretDB is built with Go (1.22+ needed)")
    done = _step(report, f"FerretDB {cfg.ferretdb_version}: go mod download + go build (minutes on 2 cores)")
    env = go_env(cfg)
    module = f"github.com/FerretDB/FerretDB@{cfg.ferretdb_version}"
    log = obtain_log(cfg)
    run_logged([go, "mod", "download", "-json", module], log, env=env, cwd=cfg.downloads)
    module_dir = Path(env["GOMODCACHE"]) / "github.com" / "!ferret!d!b" / f"!ferret!d!b@{cfg.ferretdb_version}"
    if not (module_dir / "go.mod").exists():
        raise StackError(f"go mod download did not produce {module_dir}; see {log}")
    src = cfg.downloads / "ferretdb" / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(module_dir, src)
    for path in src.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    (src / "build" / "version" / "version.txt").write_text(cfg.ferretdb_version + "\n")
    patch_ferretdb(src)
    binary.parent.mkdir(parents=True, exist_ok=True)
    # -buildvcs=false: the copy sits inside our git repo; Go would stamp *our* commit into
    # FerretDB's build info (and fail outright where git is missing).
    run_logged([go, "build", "-buildvcs=false", "-trimpath", "-o", str(binary), "./cmd/ferretdb"],
               log, env=env, cwd=src)
    if not binary.exists():
        raise StackError(f"go build finished but {binary} is missing; see {log}")
    for old in binary.parent.glob(".version-*"):
        old.unlink()
    stamp.write_text("ok\n")
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(cfg.downloads / "go", ignore_errors=True)
    done()
    return binary


_SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin", "/usr/local/bin")


def which_system(binary: str) -> str | None:
    """Like shutil.which but also looks in sbin folders, which a non-root PATH often lacks."""
    found = shutil.which(binary)
    if found:
        return found
    for folder in _SBIN:
        candidate = Path(folder) / binary
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _apt_install(cfg: StackConfig, report: Reporter, packages: list[str]) -> None:
    """`apt-get install -y --no-install-recommends <packages>` (needs root); on failure `apt-get update`
    and try once more (a fresh machine's package lists may be missing or stale)."""
    if os.geteuid() != 0:
        raise StackError(f"missing {', '.join(packages)}: run `sudo apt-get install -y {' '.join(packages)}`")
    done = _step(report, f"apt-get install {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    try:
        run_logged(install, obtain_log(cfg), env=env)
    except StackError:
        report("obtain: apt-get install failed; running apt-get update and retrying")
        run_logged(["apt-get", "update"], obtain_log(cfg), env=env)
        run_logged(install, obtain_log(cfg), env=env)
    done()


def ensure_apt_binaries(cfg: StackConfig, report: Reporter) -> None:
    """Install redis-server and nginx from Debian only when a binary is missing (needs root)."""
    missing = [pkg for pkg, binary in (("redis-server", "redis-server"), ("nginx", "nginx"))
               if which_system(binary) is None]
    if missing:
        _apt_install(cfg, report, missing)


#: Debian keeps each major version's server programs in their own folder, off PATH.
POSTGRES_LIB = Path("/usr/lib/postgresql")


def postgres_bin_dir() -> Path | None:
    """The folder holding `postgres` and `initdb`: the newest /usr/lib/postgresql/<major>/bin, else
    wherever PATH has them (a non-Debian install)."""
    majors = []
    if POSTGRES_LIB.is_dir():
        for child in POSTGRES_LIB.iterdir():
            if child.name.isdigit() and (child / "bin" / "postgres").exists() and (child / "bin" / "initdb").exists():
                majors.append(int(child.name))
    if majors:
        return POSTGRES_LIB / str(max(majors)) / "bin"
    found = which_system("postgres")
    if found and which_system("initdb"):
        return Path(found).resolve().parent
    return None


def ensure_postgres(cfg: StackConfig, report: Reporter) -> Path:
    """PostgreSQL server programs from Debian (`postgresql`: 15 on Debian 12) when missing. Only the
    programs are used: the stack runs its own cluster (initdb under the stack dir, its own port), never
    the system service. Debian's package creates the `postgres` account the server runs as."""
    found = postgres_bin_dir()
    if found is not None:
        return found
    _apt_install(cfg, report, ["postgresql"])
    found = postgres_bin_dir()
    if found is None:
        raise StackError(f"apt-get installed postgresql but no postgres/initdb under {POSTGRES_LIB}; "
                         f"see {obtain_log(cfg)}")
    return found

"""The `movieaugur` command: demo, serve, import, train, evaluate, replay, stack, up, status, down."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from infra.local import Stack, StackError
from infra.local import cli as stack_cli
from kernel.settings import Settings, load_settings
from movieaugur.progress import progress_bar, say
from movieaugur.stack_settings import stack_settings

app = typer.Typer(
    help="MovieAugur: event-sourced recommendations. Interactions go into a log; views and models are built from it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
import_app = typer.Typer(help="Import data into the event log.", no_args_is_help=True)
app.add_typer(import_app, name="import")



def _prepare_stack(stack: Stack) -> list[str]:
    """After `stack up`: MovieAugur's topics and Connect sinks on the stack just started."""
    from movieaugur.operations import prepare_distributed

    names = asyncio.run(prepare_distributed(stack_settings(stack)))
    return [f"topics ready; connectors registered: {', '.join(names)}"]


stack_cli.on_up(_prepare_stack)
app.add_typer(stack_cli.app, name="stack", help="The real stack on this machine without Docker: up, down, status.")

Port = Annotated[Optional[int], typer.Option(help="TCP port to listen on.")]
DataDir = Annotated[Optional[Path], typer.Option(help="State folder (default: MOVIEAUGUR_DATA_DIR).")]


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except Exception as error:  # pydantic's message names the variable
        raise typer.BadParameter(
            f"configuration problem: {error}\nCheck the MOVIEAUGUR_* variables (README, Configuration)."
        ) from error


def _logging(verbose: bool) -> None:
    """Libraries at WARNING (aiokafka is chatty), our own lifecycle messages at INFO. Records logged
    while a request is answered carry its `request_id`; with MOVIEAUGUR_LOG_JSON=true every line is
    one JSON object (python-json-logger): time, level, logger, message, request_id, exception."""
    from kernel.http import RequestIdFilter

    root = logging.getLogger()
    before = set(root.handlers)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("movieaugur").setLevel(logging.INFO)
    json_lines = _settings().log_json
    for handler in root.handlers:
        if handler in before:  # someone else's (a test runner's): left as it is
            continue
        handler.addFilter(RequestIdFilter())
        if json_lines:
            from pythonjsonlogger.json import JsonFormatter

            handler.setFormatter(JsonFormatter(
                "{levelname}{name}{message}", style="{", timestamp="time",
                rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            ))


def _unreachable(error: BaseException) -> str | None:
    """A backend that cannot be reached, said in words that tell what to do next."""
    from aiokafka.errors import KafkaError
    from pymongo.errors import PyMongoError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from domain.ports import LogUnavailable

    settings = load_settings()
    hint = "start the local stack with `movieaugur stack up`, or point MOVIEAUGUR_* at your servers (README, Configuration)"
    if isinstance(error, (KafkaError, LogUnavailable)):
        return f"cannot reach Kafka at {settings.kafka_bootstrap} ({error}); {hint}"
    if isinstance(error, RedisConnectionError):
        return f"cannot reach Redis at {settings.redis_url} ({error}); {hint}"
    if isinstance(error, PyMongoError):
        return f"cannot reach MongoDB at {settings.mongo_url} ({type(error).__name__}); {hint}"
    return None


T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T | None:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        say("stopped")
        return None
    except Exception as error:
        message = _unreachable(error)
        if message is None:
            raise
        say(f"[red]error:[/red] {message}")
        raise typer.Exit(2) from None


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the old and new API.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    movielens: Annotated[Optional[Path], typer.Option(help="Load a MovieLens folder (ml-latest-small layout) instead of the built-in sample.")] = None,
    data_dir: DataDir = None,
    fresh: Annotated[bool, typer.Option(help="Delete earlier demo state first.")] = False,
    users: Annotated[int, typer.Option(help="Users in the generated sample.")] = 600,
    budget: Annotated[float, typer.Option(help="Seconds the trainer may spend choosing a model.")] = 5.0,
    distributed: Annotated[bool, typer.Option("--distributed", help="Run the whole distributed system instead (`movieaugur up`); see above.")] = False,
    verbose: bool = False,
) -> None:
    """Embedded, no servers: load a sample, train, and serve the old and new API (or --distributed).

    With --distributed: `movieaugur up` (local stack + command, query and projector services), then
    load the sample into Kafka if the log is empty, train if no model is published yet, wait until
    recommendations are served through the NGINX gateway and print curl lines for it. Ctrl-C ends
    the demo but leaves the system running (the stack takes a while to start, and `movieaugur status`
    and other shells may use it); stop it with `movieaugur down`. --port, --host and --fresh are for
    the embedded demo only."""
    _logging(verbose)
    if distributed:
        from movieaugur.demo import run_distributed_demo

        if fresh:
            raise typer.BadParameter("--fresh is for the embedded demo; to start over distributed, set a new "
                                     "MOVIEAUGUR_TOPIC_PREFIX and MOVIEAUGUR_MONGO_DATABASE (or `movieaugur down` and delete the stack dir)")
        settings = _settings(data_dir=data_dir)
        try:
            _run(run_distributed_demo(settings, movielens=movielens, users=users, budget=budget))
        except StackError as exc:
            _system_failed(exc)
        return
    from movieaugur.demo import run_demo

    settings = _settings(mode="embedded", port=port, host=host, data_dir=data_dir)
    _run(run_demo(settings, movielens=movielens, fresh=fresh, users=users, budget=budget))


@app.command()
def serve(
    role: Annotated[list[str], typer.Option(help="commands, queries, projectors; repeat for several. Default: all.")] = [],  # noqa: B006
    port: Port = None,
    host: Annotated[Optional[str], typer.Option(help="Address to bind.")] = None,
    verbose: bool = False,
) -> None:
    """The HTTP services (and projector workers) against the configured backends."""
    _logging(verbose)
    from movieaugur.serve import run_services

    settings = _settings(port=port, host=host)
    _run(run_services(settings, set(role) or {"commands", "queries", "projectors"}))


@import_app.command("movielens")
def import_movielens_cmd(
    path: Annotated[Path, typer.Argument(help="Folder with ratings.csv, movies.csv (and links.csv).")],
    data_dir: DataDir = None,
    workers: Annotated[int, typer.Option(min=0, max=64, help="Importer processes, each taking a share of the users; "
                                         "0: one per core, up to 4; 1: in this process.")] = 0,
) -> None:
    """Append MovieLens ratings and movies to the log (re-importing appends nothing new)."""
    from movieaugur import operations
    from movieaugur.bootstrap import bootstrap
    from offline.ingest.movielens import DatasetError, require_dataset

    try:
        require_dataset(path)
    except DatasetError as error:
        raise typer.BadParameter(str(error)) from None
    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1:
        started = time.perf_counter()
        with progress_bar(f"importing ({workers} processes)", None) as advance:
            result = operations.load_movielens_parallel(_settings(data_dir=data_dir), path, workers, lambda _p, n: advance(n))
        say(f"imported in {operations.elapsed(started)}: {json.dumps(result)}")
        return

    async def main() -> None:
        container = await bootstrap(_settings(data_dir=data_dir))
        try:
            started = time.perf_counter()
            with progress_bar("importing", None) as advance:
                result = await operations.load_movielens(container, path, lambda _part, n: advance(n))
            say(f"imported in {operations.elapsed(started)}: {json.dumps(result)}")
        finally:
            await container.close()

    _run(main())


@app.command()
def collect(
    what: Annotated[str, typer.Argument(help="metadata or popularity")],
    data_dir: DataDir = None,
) -> None:
    """Collect catalog metadata or popular lists from TMDB into the log (needs MOVIEAUGUR_TMDB_API_KEY)."""
    from movieaugur import operations
    from movieaugur.bootstrap import bootstrap

    if what not in ("metadata", "popularity"):
        raise typer.BadParameter(f"{what!r}: choose metadata or popularity")
    settings = _settings(data_dir=data_dir)
    if not (settings.tmdb_api_key or settings.tmdb_bearer_token):
        raise typer.BadParameter("set MOVIEAUGUR_TMDB_API_KEY (or MOVIEAUGUR_TMDB_BEARER_TOKEN) to collect from TMDB")

    async def main() -> None:
        container = await bootstrap(settings)
        try:
            with progress_bar(f"collecting {what}", None) as advance:
                result = await operations.collect(container, what, lambda _p: advance(1))
            say(json.dumps(result))
        finally:
            await container.close()

    _run(main())


@app.command()
def train(
    model: Annotated[Optional[str], typer.Option(help="Model name to publish under (default: MOVIEAUGUR_DEFAULT_MODEL).")] = None,
    budget: Annotated[Optional[float], typer.Option(help="Seconds for model selection.")] = None,
    force: Annotated[bool, typer.Option(help="Publish even if the quality gate fails.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir: DataDir = None,
    engine: Annotated[Optional[str], typer.Option(help="implicit (ALS/EASE/blend in this process, tuned) or spark (Spark "
                                                       "MLlib ALS with fixed tuned parameters; MOVIEAUGUR_SPARK_MASTER, default "
                                                       "local[2]). Default: MOVIEAUGUR_TRAIN_ENGINE (implicit).")] = None,
    source: Annotated[Optional[str], typer.Option(help="Where to read interactions: auto (the snapshot if one was built), "
                                                       "log, or snapshot (default: MOVIEAUGUR_TRAIN_SOURCE).")] = None,
) -> None:
    """Train on the whole log and publish recommendations if the model beats popularity."""
    from movieaugur import operations
    from movieaugur.bootstrap import bootstrap

    if engine not in (None, "implicit", "spark"):
        raise typer.BadParameter(f"{engine!r}: choose implicit or spark", param_hint="--engine")
    if source not in (None, "auto", "log", "snapshot"):
        raise typer.BadParameter(f"{source!r}: choose auto, log or snapshot", param_hint="--source")

    async def main() -> int:
        container = await bootstrap(_settings(data_dir=data_dir))
        try:
            report = await operations.train(container, model, budget, force, progress=None if as_json else say,
                                            engine=engine, source=source)
        finally:
            await container.close()
        if as_json:
            print(json.dumps(report.as_dict(), indent=2))
        else:
            say(f"{'published' if report.published else 'NOT published'} {report.model} {report.version}: {report.reason}")
        return 0 if report.published else 3

    code = _run(main())
    raise typer.Exit(code or 0)


@app.command()
def snapshot(
    rebuild: Annotated[bool, typer.Option(help="Delete the snapshot and build it again from the start of the log.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Only say what the snapshot holds; read nothing from the log.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Build or update the columnar interaction snapshot that training reads.

    Parquet segments under MOVIEAUGUR_SNAPSHOT_DIR (default <data dir>/snapshot/interactions), each
    naming the log range it covers, and a manifest written after each segment: an update reads only
    what the log gained since the last one, and may be interrupted and repeated at any point. Once
    it exists, `movieaugur train` updates it to the log's end and trains from it (MOVIEAUGUR_TRAIN_SOURCE)."""
    from movieaugur import operations
    from movieaugur.bootstrap import bootstrap
    from offline.training.snapshot import describe

    settings = _settings(data_dir=data_dir)
    if status:
        result = describe(operations.snapshot_folder(settings))
        say(json.dumps(result, indent=2 if as_json else None))
        return

    async def main() -> None:
        container = await bootstrap(settings)
        try:
            with progress_bar("snapshot", None) as advance:
                result = await operations.snapshot(container, rebuild, advance)
        finally:
            await container.close()
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            say(f"snapshot {result['folder']}: {result['appended']} interactions appended in {result['seconds']:.1f}s "
                f"({result['segments_written']} segment(s) written); {result['events']} in all, up to {result['positions']}")

    _run(main())


@app.command()
def evaluate(
    dataset: Annotated[Path, typer.Option(help="MovieLens folder (ratings.csv).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
    budget: Annotated[float, typer.Option(help="Seconds for tuning per seed.")] = 60.0,
    seeds: Annotated[str, typer.Option(help="Comma-separated split seeds.")] = "0,1,2",
    protocol: Annotated[str, typer.Option(help="contract (§5), foldin (held-out users folded in vs retrain), "
                                               "cold (held-out items ranked by content), or all.")] = "contract",
) -> None:
    """Contract §5: R@20, R@50, NDCG@100 for popularity, EASE, ALS and the published choice.

    --protocol foldin|cold|all adds the protocols of docs/model-quality.md: fold-in (10 % of users
    held out of training, their history folded into the trained model, against a retrain and
    popularity) and cold items (10 % of items held out with their interactions, ranked by the
    content model, against random and popular-in-genre). With a protocol other than `contract`,
    the JSON has one key per protocol run (contract, foldin, cold)."""
    from offline.evaluation.compare_models import evaluate_dataset
    from offline.evaluation.fresh_protocols import evaluate_fresh

    chosen = {"contract": ["contract"], "foldin": ["foldin"], "cold": ["cold"], "all": ["contract", "foldin", "cold"]}.get(protocol)
    if chosen is None:
        raise typer.BadParameter(f"{protocol!r}: choose contract, foldin, cold or all")
    if not (dataset / "ratings.csv").is_file() and not dataset.is_file():
        raise typer.BadParameter(f"{dataset} has no ratings.csv; pass a MovieLens folder such as ../shared/data/ml-latest-small")
    split_seeds = tuple(int(s) for s in seeds.split(","))
    progress = None if as_json else say
    results: dict[str, Any] = {}
    if "contract" in chosen:
        results["contract"] = evaluate_dataset(dataset, seeds=split_seeds, time_budget=budget, progress=progress)
    results.update(evaluate_fresh(dataset, [p for p in chosen if p != "contract"], seeds=split_seeds, progress=progress))
    if as_json:
        print(json.dumps(results["contract"] if chosen == ["contract"] else results, indent=2))
        return
    for name, result in results.items():
        say(f"[bold]{name}[/bold]" + (f" ({result['protocol']['name']})" if "name" in result.get("protocol", {}) else ""))
        for model, metrics in result["models"].items():
            extra = f"  ({metrics['ndcg_vs_retrain']:.2f}× retrain)" if "ndcg_vs_retrain" in metrics else ""
            say(f"{model:>16}: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics["mean"].items()) + extra)


@app.command()
def replay(
    projection: Annotated[str, typer.Argument(help="A projection name, or 'all'.")],
    data_dir: DataDir = None,
) -> None:
    """Drop a view and rebuild it from the start of the log; report counts and time."""
    from movieaugur import operations
    from movieaugur.bootstrap import bootstrap

    async def main() -> None:
        container = await bootstrap(_settings(data_dir=data_dir))
        try:
            known = operations.replayable(container)
            names = known if projection == "all" else [projection]
            unknown = [n for n in names if n not in known]
            if unknown:
                raise typer.BadParameter(f"no projection {unknown[0]!r}; choose from: all, {', '.join(known)}")
            with progress_bar("replaying", None) as advance:
                reports = await operations.replay(container, names, lambda _n, k: advance(k))
            for report in reports:
                rate = report.events / report.seconds if report.seconds else 0
                say(f"{report.projection}: {report.events} events in {report.seconds:.2f}s ({rate:,.0f}/s)")
        finally:
            await container.close()

    _run(main())


@app.command()
def redact(
    event_id: Annotated[Optional[list[str]], typer.Option("--event-id", help="An event id to redact (repeatable).")] = None,
    user: Annotated[Optional[str], typer.Option(help="Redact this user's interactions (within --since/--until).")] = None,
    source: Annotated[Optional[str], typer.Option(help="Redact interactions from this source, e.g. api, legacy-api, movielens.")] = None,
    since: Annotated[Optional[int], typer.Option(help="With --user/--source: from this Unix time (inclusive).")] = None,
    until: Annotated[Optional[int], typer.Option(help="With --user/--source: up to this Unix time (exclusive).")] = None,
    reason: Annotated[str, typer.Option(help="Why, kept in the log with the redaction.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Neutralize bad interactions already in the log, then replay the views they touched.

    The log is append-only: a redaction event is appended and every projection and the trainer
    treat the covered interactions as never posted. Run `movieaugur train` afterwards to retrain."""
    from movieaugur import operations
    from movieaugur.bootstrap import bootstrap

    if not event_id and user is None and source is None:
        raise typer.BadParameter("say what to redact: --event-id (repeatable), --user or --source")
    if (since is not None or until is not None) and user is None and source is None:
        raise typer.BadParameter("--since/--until narrow a --user or --source redaction; name one of them")

    async def main() -> None:
        container = await bootstrap(_settings(data_dir=data_dir))
        try:
            with progress_bar("replaying the views redaction touches", None) as advance:
                result = await operations.redact(
                    container, event_id or (), user, source, since, until, reason, lambda _n, k: advance(k)
                )
            say(json.dumps(result))
        finally:
            await container.close()

    _run(main())


def _system_failed(error: BaseException) -> None:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _print_system(state: Any, as_json: bool) -> bool:
    """Print a movieaugur.system.SystemStatus; True if everything is healthy."""
    if as_json:
        typer.echo(json.dumps(state.as_dict(), indent=2))
    else:
        for line in state.lines():
            typer.echo(line)
    return bool(state.healthy)


@app.command()
def up(
    command_workers: Annotated[int | None, typer.Option(
        "--command-workers", min=1, max=32,
        help="Command service processes sharing its port (default: MOVIEAUGUR_COMMAND_WORKERS, 1).")] = None,
) -> None:
    """Start the whole distributed system here and wait until it answers. Safe to repeat.

    The local stack (as `movieaugur stack up`), MovieAugur's topics and Connect sinks for
    MOVIEAUGUR_TOPIC_PREFIX, then `movieaugur serve --role commands|queries|projectors` as background
    processes (MOVIEAUGUR_MODE=distributed, the stack's addresses, this shell's other MOVIEAUGUR_*
    settings; pid files in <stack dir>/run, logs in <stack dir>/logs). What already runs is left alone.
    Clients use the NGINX gateway (MOVIEAUGUR_GATEWAY_PORT, default http://127.0.0.1:18080).
    `movieaugur status` shows it all; `movieaugur down` stops it all."""
    from movieaugur.system import System

    system = System(command_workers=command_workers)
    try:
        system.up()
    except KeyboardInterrupt:
        typer.echo("interrupted: what was started keeps running; see `movieaugur status`, stop it with `movieaugur down`", err=True)
        raise typer.Exit(130) from None
    except StackError as exc:
        _system_failed(exc)
    except Exception as error:  # Kafka or Connect refused the topics or sinks
        _system_failed(RuntimeError(f"{error!r}; check `movieaugur status` and the logs in {system.stack.cfg.logs}"))
    healthy = _print_system(system.status(), as_json=False)
    typer.echo(f"gateway {system.gateway_url}: writes go to the command service, reads to the query service "
               f"(try `curl {system.gateway_url}/v1/popularity/movie`); stop everything with `movieaugur down`")
    if not healthy:
        raise typer.Exit(1)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Show the whole system: every stack component and MovieAugur service, healthy or not.

    For each: pid, address, health, memory, log file; and the projectors' lag (offsets not yet
    applied, from the query service's /metrics; "-" when not available). Exit code 1 if anything is
    unhealthy (`movieaugur up` starts what is missing)."""
    from movieaugur.system import System

    if not _print_system(System().status(), as_json=as_json):
        raise typer.Exit(1)


@app.command()
def down(
    services_only: Annotated[bool, typer.Option("--services-only", help="Stop only the MovieAugur services and leave the stack running (it may be shared, e.g. by tests).")] = False,
) -> None:
    """Stop what `movieaugur up` started: the MovieAugur services, then the local stack.

    The command, query and projector services get SIGTERM, then SIGKILL after 20 s; then the local
    stack stops (as `movieaugur stack down`). Data and downloads stay; processes it did not start
    are left alone."""
    from movieaugur.system import System

    try:
        System().down(services_only=services_only)
    except StackError as exc:
        _system_failed(exc)


def main() -> None:
    from kernel.gc_tuning import tune_for_streaming

    tune_for_streaming()  # every command streams events: serving, projecting, replaying, importing, training
    app()


if __name__ == "__main__":
    main()

"""`movieaugur import movielens --workers N`: N processes, each appending the ratings of its users.

Why processes: an import is CPU-bound Python (parse a row, build the domain event, encode it), one
core's worth at about 30k events/s here, and threads would share one interpreter lock. Each worker
opens its own log through the same `build_log` as every service, so the log's own guarantees hold
unchanged: in Kafka each worker is one more transactional producer; in SQLite the append takes a
file lock for its transaction while the encoding before it runs in parallel. Users are split by a
stable hash (offline.ingest.movielens.user_shard), so each user's rows keep their file order; the
catalog goes with worker 0. Event ids are derived from the rows, so a re-run (or a rerun after a
worker failed) appends only what is missing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue as queues
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from domain.codec import EventCodec
from domain.ports import AppendResult
from kernel.settings import Settings
from offline.ingest.movielens import BATCH_SIZE, import_movielens


class ImportFailed(RuntimeError):
    """A worker failed; the message carries its traceback. What others appended stays (ids make a
    re-run append only the rest)."""


def _worker(settings: Settings, folder: str, shard: tuple[int, int], batch_size: int, report: Any) -> None:
    from kernel.gc_tuning import tune_for_streaming
    from movieaugur.bootstrap import build_log

    tune_for_streaming()  # a spawned process: the CLI's setting does not reach it

    async def run() -> dict[str, tuple[int, int]]:
        log = build_log(settings, EventCodec())
        try:
            results = await import_movielens(log, folder, shard=shard, batch_size=batch_size,
                                             progress=lambda part, n: report.put(("progress", part, n)))
        finally:
            await log.close()
        return {part: (r.appended, r.duplicates) for part, r in results.items()}

    try:
        report.put(("done", shard[0], asyncio.run(run())))
    except BaseException:
        report.put(("failed", shard[0], traceback.format_exc()))


def import_movielens_parallel(
    settings: Settings,
    folder: Path,
    workers: int,
    progress: Callable[[str, int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> dict[str, AppendResult]:
    """Run `workers` importer processes to the end (`batch_size` events per append); their counts
    summed per part."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads and sockets
    report = context.Queue()
    processes = [context.Process(target=_worker, args=(settings, str(folder), (k, workers), batch_size, report), daemon=True)
                 for k in range(workers)]
    for process in processes:
        process.start()
    totals: dict[str, list[int]] = {}
    finished = 0
    try:
        while finished < workers:
            try:
                message = report.get(timeout=1.0)
            except queues.Empty:
                dead = [p for p in processes if p.exitcode not in (None, 0)]
                if dead:
                    raise ImportFailed(f"an importer process exited with {dead[0].exitcode} without a report") from None
                continue
            kind = message[0]
            if kind == "progress" and progress:
                progress(message[1], message[2])
            elif kind == "done":
                finished += 1
                for part, (appended, duplicates) in message[2].items():
                    total = totals.setdefault(part, [0, 0])
                    total[0], total[1] = total[0] + appended, total[1] + duplicates
            elif kind == "failed":
                raise ImportFailed(f"importer {message[1]} failed; run the import again to append the rest:\n{message[2]}")
    finally:
        for process in processes:
            if process.is_alive() and finished < workers:
                process.terminate()
            process.join()
    return {part: AppendResult(appended, duplicates) for part, (appended, duplicates) in totals.items()}

"""What every MovieAugur DAG task does: build the settings, wire the container, run one operation.

Kept out of the DAG files so they stay declarations. Settings come from the environment
(MOVIEAUGUR_*), overridden by the Airflow Variable `movieaugur_settings` (a JSON object of setting
names) when it exists; the TMDB key can come from the Airflow Connection `tmdb_default` (its
password). Nothing here runs at DAG-parse time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger("movieaugur.dags")

VARIABLE = "movieaugur_settings"
TMDB_CONNECTION = "tmdb_default"


def _airflow_overrides() -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    try:
        from airflow.sdk import Connection, Variable
    except ImportError:  # running outside Airflow (tests of the operations themselves)
        return overrides
    try:
        raw = Variable.get(VARIABLE, default=None)
    except Exception:
        raw = None
    if raw:
        overrides.update(json.loads(raw) if isinstance(raw, str) else raw)
    try:
        connection = Connection.get(TMDB_CONNECTION)
    except Exception:
        connection = None
    if connection is not None and connection.password:
        overrides.setdefault("tmdb_api_key", connection.password)
    return overrides


def run_operation(name: str, **kwargs: Any) -> dict[str, Any]:
    """Run `movieaugur.operations.<name>` against the configured backends; return a JSON-able report."""
    from kernel.settings import load_settings
    from movieaugur import operations
    from movieaugur.bootstrap import bootstrap

    settings = load_settings(**_airflow_overrides())

    async def main() -> dict[str, Any]:
        container = await bootstrap(settings)
        try:
            result = await getattr(operations, name)(container, **kwargs)
        finally:
            await container.close()
        return result.as_dict() if hasattr(result, "as_dict") else result

    report = asyncio.run(main())
    log.info("%s: %s", name, json.dumps(report, default=str)[:2000])
    return report

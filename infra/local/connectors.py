"""After the processes are up: MovieAugur's topics (contract §3) and its Kafka Connect sinks.

Topics are created with their retention and compaction settings by the Kafka adapter itself (so a
production deployment gets the same ones); the connector configurations are JSON templates in
infra/connect/, registered through Connect's REST API with an idempotent PUT.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

from .config import INFRA_DIR

# Which sink keeps which projection's view in distributed mode, by template file.
SINKS = {"catalog": "catalog-sink", "recommendations": "recommendations-sink"}


def connector_name(topic_prefix: str, projection: str) -> str:
    """Named after the topic prefix, so deployments sharing a Connect cluster never collide."""
    return f"{topic_prefix}{SINKS[projection]}"


def render_connector(template: Path, topic_prefix: str, mongo_url: str, database: str) -> dict:
    text = Template(template.read_text()).substitute(topic_prefix=topic_prefix, mongo_url=mongo_url, database=database)
    return json.loads(text)


def ensure_topics_and_connectors(stack) -> list[str]:  # type: ignore[no-untyped-def]
    """Create missing topics, then register (or update) each sink; returns the connector names."""
    from movieaugur.config import Settings

    settings = Settings(mode="distributed", kafka_bootstrap=stack.bootstrap_servers, mongo_url=stack.mongo_url,
                        redis_url=stack.redis_url, connect_url=stack.connect_url)
    return register(stack, settings)


def register(stack, settings) -> list[str]:  # type: ignore[no-untyped-def]
    """Topics of `settings` (created with their retention and compaction), then its sinks."""
    import asyncio

    from movieaugur.adapters.kafka_log import KafkaEventLog

    asyncio.run(KafkaEventLog(settings).ensure_topics())
    names = []
    for projection, file in SINKS.items():
        config = render_connector(INFRA_DIR / "connect" / f"{file}.json", settings.topic_prefix, settings.mongo_url, settings.mongo_database)
        names.append(connector_name(settings.topic_prefix, projection))
        stack.connect.put_connector(names[-1], config)
    return names

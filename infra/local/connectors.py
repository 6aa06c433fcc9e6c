"""After the processes are up: MovieAugur's topics (contract §3) and its Kafka Connect sinks.

Topics are created with their retention and compaction settings by the Kafka adapter itself (so a
production deployment gets the same ones); the connector configurations are JSON templates in
infra/connect/, registered through Connect's REST API with an idempotent PUT.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from string import Template

from .config import INFRA_DIR

CONNECTORS = {"movieaugur-catalog-sink": "catalog-sink.json", "movieaugur-recommendations-sink": "recommendations-sink.json"}


def render_connector(template: Path, topic_prefix: str, mongo_url: str, database: str) -> dict:
    text = Template(template.read_text()).substitute(topic_prefix=topic_prefix, mongo_url=mongo_url, database=database)
    return json.loads(text)


def ensure_topics_and_connectors(stack) -> list[str]:  # type: ignore[no-untyped-def]
    """Create missing topics, then register (or update) each sink; returns the connector names."""
    from movieaugur.adapters.kafka_log import KafkaEventLog
    from movieaugur.config import Settings

    settings = Settings(mode="distributed", kafka_bootstrap=stack.bootstrap_servers, mongo_url=stack.mongo_url,
                        redis_url=stack.redis_url)
    asyncio.run(KafkaEventLog(settings).ensure_topics())
    for name, file in CONNECTORS.items():
        config = render_connector(INFRA_DIR / "connect" / file, settings.topic_prefix, settings.mongo_url, settings.mongo_database)
        stack.connect.put_connector(name, config)
    return list(CONNECTORS)

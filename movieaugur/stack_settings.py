"""Settings that point MovieAugur's distributed mode at the local stack (infra/local)."""

from __future__ import annotations

from typing import Any

from infra.local import Stack
from kernel.settings import Settings


def stack_settings(stack: Stack, **overrides: Any) -> Settings:
    """Distributed-mode settings for the stack's addresses; other fields from the environment."""
    addresses = {
        "mode": "distributed",
        "kafka_bootstrap": stack.bootstrap_servers,
        "mongo_url": stack.mongo_url,
        "redis_url": stack.redis_url,
        "connect_url": stack.connect_url,
    }
    return Settings(**{**addresses, **overrides})

"""Test helper: `ensure_stack()` brings the real stack up once and hands back addresses.

Idempotent and cheap when the stack already runs (each component just answers its probe), so every
test module may call it; the first call in a cold checkout downloads and builds (minutes).
"""

from __future__ import annotations

import os

from .proc import Reporter
from .stack import Stack

_STACK: Stack | None = None


def ensure_stack() -> Stack:
    """Return a running Stack (started if needed). Its addresses: `.bootstrap_servers`, `.connect_url`,
    `.mongo_url`, `.redis_url`, `.gateway_url` (or `.addresses` for all of them at once)."""
    global _STACK
    if _STACK is None:
        _STACK = Stack(report=Reporter(quiet=os.environ.get("MOVIEAUGUR_STACK_QUIET") == "1"))
    _STACK.up()
    return _STACK

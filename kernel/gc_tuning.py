"""The cyclic garbage collector's thresholds for processes that stream events.

CPython runs its youngest collection after every 700 new container objects. A projector, a replay
or an import holds a batch of a few thousand freshly decoded events alive while it works on it, so
each of those collections walks the live part of the batch and promotes it, and the older
generations walk it again: py-spy put a fifth of a replay's decoding time on the allocation that
happened to trigger a collection. Reference counting frees these objects anyway (the hot paths make
no cycles); the cyclic collector only needs to run now and then. With the youngest threshold at
50,000 the same replay ran 15-45 % faster (BENCHMARKS.md §7), and memory stays bounded because
cycles are still collected.
"""

from __future__ import annotations

import gc

#: New container objects between two collections of the youngest generation (CPython's default: 700).
STREAMING_THRESHOLD = 50_000


def tune_for_streaming(threshold: int = STREAMING_THRESHOLD) -> None:
    """Collect the youngest generation every `threshold` allocations; the older ones as before."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)

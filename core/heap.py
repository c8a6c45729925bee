"""The process's long-lived heap and the garbage collector.

A server process keeps large object graphs for its whole life: the knowledge indexes, Babel's locale
data, the message catalogues and the language helpers' dictionaries. CPython's cyclic collector walks
every tracked object of the oldest generation in each full collection, so with those graphs in it a
full collection pauses the process for up to ~200 ms, in the middle of whatever message is being
answered (the engine's p99). :func:`freeze_long_lived` moves what is alive once start-up or an index
build is done into the collector's permanent generation, which collections skip.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> int:
    """Collect garbage, then freeze every object still alive (``gc.freeze``), so later collections
    no longer walk it. Call it when a long-lived structure has just been built: after start-up's
    warm-up and after a large knowledge index build (``knowledge.search.FREEZE_MIN_ITEMS`` items
    or more). Frozen objects are still freed by reference counting
    when dropped (a replaced index is); only reference cycles among them wait until the next call,
    which unfreezes and collects everything first. Costs one full collection (about 0.1-0.3 s of CPU
    on a large heap, holding the GIL). Returns the number of frozen objects."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

"""Process-level tuning shared by the long-running entry points (the API and ingest apps)."""

from __future__ import annotations

import gc

# Young-generation threshold: net new container objects between collections (CPython's default is 700).
# With ~200 requests in flight every young collection walks the objects of all of them; collecting a
# seventh as often cut the API's CPU per request by 6-8 % (bench/api.py, two A/B runs of 4 rounds), and what
# waits longer to be freed is only cyclic garbage, a few thousand objects at most.
YOUNG_GENERATION_THRESHOLD = 5000


def tune_gc_for_serving() -> None:
    """Move everything alive after start-up (modules, routes, pydantic schemas, clients) out of the garbage
    collector's reach: full collections then traverse only per-request objects. With 200 requests in flight,
    collections that walked the start-up graph cost the API ~100 us of CPU per request (bench/api.py).
    Start-up garbage is collected first, because frozen objects are never freed. Then young collections
    run less often (see YOUNG_GENERATION_THRESHOLD)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)

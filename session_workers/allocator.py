"""glibc's malloc and the worker's big buffers.

Every inbound media file crosses the worker as a few buffers of its size: the page's base64 and the bytes in
Python, strings and pipe buffers in Playwright's driver (node). glibc serves a request of 128 KiB or more with mmap
and unmaps it when freed, but on the first such free it raises that threshold to the freed size (up to 32 MiB): from
then on 1-2 MB buffers come from its heaps, and what they leave there stays with the process. In bench/media.py the
worker's Python grew 101 -> 116 -> 123 MiB over two rounds of 500 images with no Python object kept (tracemalloc
showed none), and the driver 194 -> 265 -> 247 MiB; with the threshold fixed at 1 MiB, 99 -> 106 -> 96 and
186 -> 225 -> 225 (docs/benchmarks.md, Media). The fixed threshold is set for this process and, through the
environment, for the driver and the Chromium it starts (glibc reads `MALLOC_MMAP_THRESHOLD_` at process start).

Buffers under the threshold (the smaller files) still come from the heaps; what they leave free there is handed
back to the system every few seconds (`malloc_trim`), so a burst of media does not stay in the worker's memory.

The driver's JavaScript heap has the same habit: V8 grows its young generation under a burst of allocation (the
JSON messages and base64 strings every file becomes there) up to its default maximum, 64 MiB in the node that
Playwright ships (26.x), and a collection does not give it back. In bench/media.py the driver went 111 -> 147-155
MiB after a round of 500 images, after a forced collection; with the young generation capped at 4 MiB semi-spaces
(`--max-semi-space-size=4`, 8 MiB in all) 108-110 -> 121, and it used a third less CPU (6.1-8.3 CPU-s a round
against 9.7-11.3; docs/benchmarks.md, Media, runs 24-34).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import MutableMapping

MMAP_THRESHOLD_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # malloc.h
ENV = "MALLOC_MMAP_THRESHOLD_"
GIVE_BACK_SECONDS = 10.0
DRIVER_SEMI_SPACE_MIB = 4
SEMI_SPACE_FLAG = "--max-semi-space-size"


def keep_big_buffers_out_of_the_heap(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Fix glibc's mmap threshold (an operator's `MALLOC_MMAP_THRESHOLD_` wins) for this process and the processes
    it starts from now on. Call it first thing: buffers already freed into the heap stay there. False where the C
    library has no `mallopt` (not glibc)."""
    environ.setdefault(ENV, str(MMAP_THRESHOLD_BYTES))
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, int(environ[ENV])))


def keep_the_drivers_young_generation_small(environ: MutableMapping[str, str] = os.environ) -> str:
    """Cap the young generation of Playwright's driver (node, started after this) through `NODE_OPTIONS`; an
    operator's own `--max-semi-space-size` there wins. Returns the options the driver will get."""
    options = environ.get("NODE_OPTIONS", "")
    if SEMI_SPACE_FLAG not in options:
        environ["NODE_OPTIONS"] = f"{options} {SEMI_SPACE_FLAG}={DRIVER_SEMI_SPACE_MIB}".strip()
    return environ["NODE_OPTIONS"]


def give_back() -> bool:
    """Hand the free pages of glibc's heaps back to the system (`malloc_trim(0)`); True if some were. False where
    the C library has no `malloc_trim`."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    return bool(trim(0))


def keep_giving_back(every: float = GIVE_BACK_SECONDS) -> threading.Thread:
    """A daemon thread that gives the heaps' free pages back every `every` seconds."""

    def loop() -> None:
        while True:
            time.sleep(every)
            give_back()

    thread = threading.Thread(target=loop, name="malloc-give-back", daemon=True)
    thread.start()
    return thread

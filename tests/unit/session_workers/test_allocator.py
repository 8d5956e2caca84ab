"""The worker fixes glibc's mmap threshold, so media-sized buffers are given back to the system when freed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from session_workers.allocator import ENV, MMAP_THRESHOLD_BYTES

# In a fresh process: free one 1.5 MB buffer, then ask for 1.4 MB; is the second mmapped (outside the heap)?
PROBE = """
import ctypes, json, os, sys
from session_workers.allocator import keep_big_buffers_out_of_the_heap
tuned = keep_big_buffers_out_of_the_heap() if sys.argv[1] == "tuned" else None
class Info(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(n, ctypes.c_size_t) for n in names.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
first = bytearray(1_500_000)
del first
second = bytearray(1_400_000)
print(json.dumps({"tuned": tuned, "mmapped": libc.mallinfo2().hblkhd >= 1_400_000, "env": os.environ.get(sys.argv[2])}))
"""


def probe(mode: str, **given: str) -> dict[str, object]:
    env = {"PATH": "/usr/bin:/bin", **given}  # no MALLOC_* from the caller
    output = subprocess.run(
        [sys.executable, "-c", PROBE, mode, ENV], env=env, capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(output))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_freed_media_sized_buffer_does_not_move_the_threshold() -> None:
    # Given a process as glibc starts it, and one that fixed the threshold first
    untouched, tuned = probe("untouched"), probe("tuned")

    # Then after a 1.5 MB buffer was freed, glibc serves 1.4 MB from its heap, unless the threshold was fixed
    assert untouched == {"tuned": None, "mmapped": False, "env": None}
    # And the processes the tuned one starts (Playwright's driver, Chromium) get the same threshold
    assert tuned == {"tuned": True, "mmapped": True, "env": str(MMAP_THRESHOLD_BYTES)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_an_operators_threshold_wins() -> None:
    # Given an operator's own threshold (4 MiB) in the worker's environment
    # When the worker starts
    started = probe("tuned", **{ENV: "4194304"})

    # Then it is kept, for the worker and what it starts: 1.4 MB after a freed 1.5 MB comes from the heap
    assert started == {"tuned": True, "mmapped": False, "env": "4194304"}


GIVE_BACK_PROBE = """
import json, random
from session_workers.allocator import give_back, keep_big_buffers_out_of_the_heap
keep_big_buffers_out_of_the_heap()
def rss_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS"))
start = rss_kib()
rng = random.Random(1)
live, keep = [], []
for i in range(2000):  # files of 200-900 KB (under the threshold) passing through, 8 alive at a time,
    live.append(bytes(rng.randint(200_000, 900_000)))  # and small objects (about 4.5 MiB in all) that stay
    if len(live) > 8:
        live.pop(0)
    keep.append(bytes(rng.randint(600, 4000)))
live.clear()
freed = rss_kib()
trimmed = give_back()
after = rss_kib()
print(json.dumps({"kept_mib": (freed - start) / 1024, "given_back_mib": (freed - after) / 1024, "trimmed": trimmed}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_free_heap_pages_are_given_back() -> None:
    # Given a stream of files under the threshold through a heap that also keeps small objects
    output = subprocess.run(
        [sys.executable, "-c", GIVE_BACK_PROBE],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(output)

    # Then once they are all freed the process still holds more than it keeps (the holes between the small ones),
    # and giving back returns most of the difference to the system
    assert result["kept_mib"] > 8
    assert result["trimmed"] is True
    assert result["given_back_mib"] > 6

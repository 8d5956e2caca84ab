"""The worker fixes glibc's mmap threshold, so media-sized buffers are given back to the system when freed, and caps
the young generation of Playwright's driver, so a burst does not leave it larger."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from session_workers.allocator import (
    DRIVER_SEMI_SPACE_MIB,
    ENV,
    MMAP_THRESHOLD_BYTES,
    keep_the_drivers_young_generation_small,
)

MIB = 1024 * 1024

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


# Node's young generation after a burst of short-lived objects, some surviving a while (as the driver's messages do)
YOUNG_GENERATION_PROBE = """
const v8 = require('v8');
const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
let alive = [];
for (let i = 0; i < 2000000; i++) {
  alive.push({ text: 'message ' + i, ids: [i, i + 1] });
  if (alive.length > 200000) alive = alive.slice(100000);
}
console.log(JSON.stringify({ now: newSpace() }));
"""


def young_generation(node_options: str | None) -> dict[str, int]:
    from playwright._impl._driver import compute_driver_executable

    node = compute_driver_executable()[0]
    env = {"PATH": "/usr/bin:/bin", **({"NODE_OPTIONS": node_options} if node_options is not None else {})}
    output = subprocess.run([node, "-e", YOUNG_GENERATION_PROBE], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(output.stdout))


def test_the_drivers_young_generation_is_capped() -> None:
    # Given the options the worker gives Playwright's driver, and none
    environ: dict[str, str] = {}
    options = keep_the_drivers_young_generation_small(environ)

    # When the driver's node allocates a burst of messages
    capped, default = young_generation(options), young_generation(None)

    # Then its new space is left near two semi-spaces of 4 MiB (8-10 MiB seen), where by default it is left at 64
    assert options == f"--max-semi-space-size={DRIVER_SEMI_SPACE_MIB}"
    assert capped["now"] <= 4 * DRIVER_SEMI_SPACE_MIB * MIB, capped
    assert default["now"] >= 8 * DRIVER_SEMI_SPACE_MIB * MIB, default


def test_an_operators_node_options_are_kept() -> None:
    # Given NODE_OPTIONS an operator set: other flags, and then a semi-space of their own
    others = {"NODE_OPTIONS": "--trace-warnings"}
    own = {"NODE_OPTIONS": "--max-semi-space-size=16"}

    # When the worker starts
    keep_the_drivers_young_generation_small(others)
    keep_the_drivers_young_generation_small(own)

    # Then their flags stay, the cap is added only where they set no semi-space of their own
    assert others["NODE_OPTIONS"] == f"--trace-warnings --max-semi-space-size={DRIVER_SEMI_SPACE_MIB}"
    assert own["NODE_OPTIONS"] == "--max-semi-space-size=16"

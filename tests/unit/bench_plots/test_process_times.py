"""The benches' one-pass /proc reading: every process's parent and CPU, and a process tree from it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bench.common import children_of, cpu_seconds, process_times
from session_workers.metrics import descendants


def test_one_pass_finds_a_child_and_its_grandchild_with_the_cpu_proc_reports() -> None:
    # Given a child process that starts a grandchild and both wait
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '30']); sys.exit(0)"],
    )
    try:
        for _ in range(200):
            table = process_times()
            tree = descendants(os.getpid(), children_of(table))
            if child.pid in tree and any(table[pid].ppid == child.pid for pid in tree):
                break
            time.sleep(0.02)

        # When the table is read
        table = process_times()
        tree = descendants(os.getpid(), children_of(table))

        # Then both are below this process, each with its parent, and this process's CPU is what /proc says
        grandchildren = [pid for pid in tree if table[pid].ppid == child.pid]
        assert child.pid in tree and grandchildren
        assert table[child.pid].ppid == os.getpid()
        own = table[os.getpid()]
        assert own.ppid == os.getppid()
        assert abs(own.cpu_s - cpu_seconds(os.getpid(), reaped_children=True)) < 0.05
    finally:
        for pid in descendants(child.pid, children_of(process_times())):
            os.kill(pid, signal.SIGKILL)
        child.kill()
        child.wait()


def test_a_process_without_children_has_no_descendants() -> None:
    # Given the table of this moment
    table = process_times()

    # When the tree below a pid that has no children (or does not exist) is asked for
    # Then it is empty
    assert descendants(2**22 + 1, children_of(table)) == []

"""Pieces the benchmarks share."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from shared.local.services import REPO_ROOT, free_port


@contextmanager
def serve(target: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """An ASGI app under uvicorn (one process) on a free port; yields its base URL and PID."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env,
        cwd=REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/openapi.json", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)

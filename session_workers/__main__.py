"""`python -m session_workers [--worker-id ID] [--capacity N] [--auth-strategy profile|context] ...`

Every flag overrides the matching `WAGW_*` setting (see shared/settings.py). SIGTERM and SIGINT stop gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from session_workers.allocator import (
    keep_big_buffers_out_of_the_heap,
    keep_giving_back,
    keep_the_drivers_young_generation_small,
)
from session_workers.worker import Worker
from shared.settings import get_settings

FLAGS = {
    "worker_id": "WAGW_WORKER_ID",
    "capacity": "WAGW_WORKER_CAPACITY",
    "auth_strategy": "WAGW_AUTH_STRATEGY",
    "health_port": "WAGW_HEALTH_PORT",
    "whatsapp_url": "WAGW_WHATSAPP_URL",
    "ingest_url": "WAGW_INGEST_URL",
    "chromium_path": "WAGW_CHROMIUM_PATH",
    "redis_url": "WAGW_REDIS_URL",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m session_workers", description="Run a WhatsApp session worker.")
    parser.add_argument("--worker-id", help="unique id (default: <hostname>-<random>)")
    parser.add_argument("--capacity", type=int, help="most sessions this worker drives")
    parser.add_argument("--auth-strategy", choices=["profile", "context"])
    parser.add_argument("--health-port", type=int, help="port of /healthz, /readyz, /metrics (default 8090)")
    parser.add_argument("--whatsapp-url", help="https://web.whatsapp.com/ or the simulator's URL")
    parser.add_argument("--ingest-url")
    parser.add_argument("--chromium-path")
    parser.add_argument("--redis-url")
    return parser.parse_args(argv)


async def run(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.request_stop)
    await worker.run()


def main(argv: list[str] | None = None) -> None:
    keep_big_buffers_out_of_the_heap()  # before any media buffer, and before Playwright's driver starts
    keep_the_drivers_young_generation_small()
    keep_giving_back()
    args = parse_args(argv)
    for name, env in FLAGS.items():
        value = getattr(args, name)
        if value is not None:
            os.environ[env] = str(value)
    get_settings.cache_clear()
    asyncio.run(run(Worker(get_settings())))


if __name__ == "__main__":
    main()

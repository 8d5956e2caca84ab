"""`python -m session_workers.simulator --port 8091 [--qr-interval-ms 20000] [--qr-max 0]`."""

from __future__ import annotations

import argparse

import uvicorn

from session_workers.simulator.server import SimulatorState, create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="WhatsApp Web simulator (page + control API).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--qr-interval-ms", type=int, default=20_000, help="how often the QR code rotates")
    parser.add_argument("--qr-max", type=int, default=0, help="QR codes before the page goes idle (0: never)")
    args = parser.parse_args()
    state = SimulatorState(qr_interval_ms=args.qr_interval_ms, qr_max=args.qr_max)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()

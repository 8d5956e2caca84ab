"""Start and stop the real backing services (redis-server, LocalStack) as child processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCALSTACK_PYTHON = Path(os.environ.get("WAGW_LOCALSTACK_PYTHON", REPO_ROOT / ".tools/localstack-venv/bin/python"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

# LocalStack hard-codes its S3 scratch folder; point it at ours before the runtime starts.
_LOCALSTACK_BOOT = """
import os, runpy
import localstack.services.s3.provider as s3_provider
import uuid
# LocalStack 4.13's KMS names key material with uuid5(namespace, <bytes>), which only Python >= 3.12 accepts.
_uuid5 = uuid.uuid5
uuid.uuid5 = lambda namespace, name: _uuid5(namespace, name.decode("latin-1") if isinstance(name, bytes) else name)
s3_provider.DEFAULT_S3_TMP_DIR = os.environ["WAGW_S3_TMP_DIR"]
runpy.run_module("localstack.runtime.main", run_name="__main__")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    own_workdir: bool = field(default=True)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _wait(check: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; log: {log.read_text()[-2000:]}")
        if check():
            return
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{what} was not healthy within {timeout}s; log: {log.read_text()[-2000:]}")


def start_redis(port: int | None = None, workdir: Path | None = None, password: str | None = None) -> ServiceProcess:
    port = port or free_port()
    own = workdir is None
    directory = workdir or Path(tempfile.mkdtemp(prefix="wagw-redis-"))
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "redis.log"
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--logfile",
            str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C reaches the runner, which stops services last
    )

    def ping() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
                return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")
        except OSError:
            return False

    _wait(ping, "redis-server", process, log, 15)
    return ServiceProcess("redis", f"redis://127.0.0.1:{port}/0", process, directory, log, own)


def start_localstack(port: int | None = None, workdir: Path | None = None) -> ServiceProcess:
    if not LOCALSTACK_PYTHON.exists():
        raise RuntimeError(f"LocalStack is not installed at {LOCALSTACK_PYTHON}; run `make deps`")
    port = port or free_port()
    own = workdir is None
    directory = workdir or Path(tempfile.mkdtemp(prefix="wagw-localstack-"))
    (directory / "s3tmp").mkdir(parents=True, exist_ok=True)
    log = directory / "localstack.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WAGW_"))},
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(directory / "root"),
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        "DNS_ADDRESS": "0",
        "SQS_ENDPOINT_STRATEGY": "path",
        # LocalStack's SQS posts a CloudWatch datapoint per message through its own gateway: ~10 ms CPU per
        # SendMessageBatch of 10 (1 ms without). Nothing local reads them; the alarms live in AWS.
        "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
        "WAGW_S3_TMP_DIR": str(directory / "s3tmp"),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(LOCALSTACK_PYTHON), "-c", _LOCALSTACK_BOOT],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=directory,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/_localstack/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    _wait(healthy, "LocalStack", process, log, 90)
    return ServiceProcess("localstack", url, process, directory, log, own)


def aws_test_environment(endpoint_url: str) -> dict[str, str]:
    """What boto3 needs to talk to LocalStack; the code itself never names an endpoint."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


if __name__ == "__main__":  # pragma: no cover - manual use
    services = [start_redis(), start_localstack()]
    print(" ".join(s.url for s in services), file=sys.stderr)
    try:
        signal.pause()
    finally:
        for service in services:
            service.stop()

"""The whole wa-gateway on one machine: what `wagw run` starts and what the end-to-end tests drive.

Real redis-server and LocalStack; the API and ingest apps under uvicorn; the deliver handler fed real
SQS batches by a local poller; cleanup and the retry scheduler fired by EventBridge rules in LocalStack;
session workers on the WhatsApp Web simulator (or the real site); a local webhook receiver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared import aws
from shared.settings import DEV_ADMIN_KEY, get_settings
from wagw_local import bootstrap, schedules, services
from wagw_local.lambda_runtime import LocalLambda
from wagw_local.receiver import Receiver, ReceiverState
from wagw_local.services import REPO_ROOT, ServiceProcess, free_port
from wagw_local.sqs_runner import SqsPoller


@dataclass
class Ports:
    api: int = 8080
    ingest: int = 8081
    simulator: int = 8082
    receiver: int = 8083
    redis: int = 6390
    localstack: int = 4566
    worker_health: tuple[int, ...] = (8090, 8091)

    @classmethod
    def free(cls, workers: int = 2) -> Ports:
        return cls(
            api=free_port(),
            ingest=free_port(),
            simulator=free_port(),
            receiver=free_port(),
            redis=free_port(),
            localstack=free_port(),
            worker_health=tuple(free_port() for _ in range(workers)),
        )


@dataclass
class SystemOptions:
    ports: Ports = field(default_factory=Ports)
    workers: int = 2
    real_whatsapp: bool = False
    auth_strategy: str = "profile"
    workdir: Path = REPO_ROOT / ".run"
    redis_url: str | None = None
    aws_endpoint_url: str | None = None
    schedules: bool = True
    retry_schedule: str | None = None
    worker_env: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # for every part (e.g. WAGW_THROTTLE_LIMITS)


@dataclass
class Demo:
    workspace_id: str
    api_key: str
    endpoint_id: str
    endpoint_secret: str


class LocalSystem:
    def __init__(self, options: SystemOptions | None = None) -> None:
        self.options = options or SystemOptions()
        self.services: list[ServiceProcess] = []
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.pollers: list[SqsPoller] = []
        self.lambdas: list[LocalLambda] = []
        self.stop_schedules = threading.Event()
        self.schedule_threads: list[threading.Thread] = []
        self.receiver_state = ReceiverState(secrets={})
        self.receiver = Receiver(self.receiver_state, self.options.ports.receiver)
        self.env: dict[str, str] = {}
        self._saved_environment: dict[str, str | None] = {}
        self.demo: Demo | None = None

    # URLs ----------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.options.ports.api}"

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.options.ports.ingest}/v1/events"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.options.ports.simulator}"

    def worker_ids(self) -> list[str]:
        return [f"worker-{chr(ord('a') + i)}" for i in range(self.options.workers)]

    # Start ---------------------------------------------------------------------------------------
    def start(self) -> LocalSystem:
        self.options.workdir.mkdir(parents=True, exist_ok=True)
        self._start_services()
        self._configure_environment()
        bootstrap.bootstrap()
        self._start_apps()
        self._start_deliver_poller()
        if self.options.schedules:
            self._start_schedules()
        self.receiver.start()
        if not self.options.real_whatsapp:
            self._spawn(
                "simulator",
                [sys.executable, "-m", "session_workers.simulator", "--port", str(self.options.ports.simulator)],
            )
            self._wait_http(self.simulator_url + "/")
        for worker_id, port in zip(self.worker_ids(), self.options.ports.worker_health, strict=False):
            self.start_worker(worker_id, port)
        return self

    def _start_services(self) -> None:
        ports = self.options.ports
        if self.options.redis_url is None:
            redis = services.start_redis(ports.redis, self.options.workdir / "redis")
            self.services.append(redis)
            self.options.redis_url = redis.url
        if self.options.aws_endpoint_url is None:
            localstack = services.start_localstack(ports.localstack, self.options.workdir / "localstack")
            self.services.append(localstack)
            self.options.aws_endpoint_url = localstack.url

    def _configure_environment(self) -> None:
        assert self.options.redis_url and self.options.aws_endpoint_url
        self.env = {
            **services.aws_test_environment(self.options.aws_endpoint_url),
            "WAGW_ENV": "dev",
            "WAGW_ALLOW_LOCAL_WEBHOOKS": "true",  # the demo endpoint is the local receiver
            "WAGW_REDIS_URL": self.options.redis_url,
            "WAGW_INGEST_URL": self.ingest_url,
            "WAGW_AUTH_STRATEGY": self.options.auth_strategy,
            "POWERTOOLS_METRICS_DISABLED": "true",
            # Powertools then keeps one event loop per poller thread, as in a Lambda container, so the
            # deliver function's Redis and httpx clients live across invocations.
            "LAMBDA_TASK_ROOT": str(REPO_ROOT),
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
        self.env.update(self.options.extra_env)
        if self.options.retry_schedule:
            self.env["WAGW_RETRY_SCHEDULE_SECONDS"] = self.options.retry_schedule
        if not self.options.real_whatsapp:
            self.env["WAGW_WHATSAPP_URL"] = self.simulator_url + "/"
        self._saved_environment = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        get_settings.cache_clear()
        aws.reset_clients()

    def _restore_environment(self) -> None:
        """Put this process's environment back as it was before start (tests run other things after)."""
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}
        get_settings.cache_clear()
        aws.reset_clients()

    def _start_apps(self) -> None:
        for name, target, port in (
            ("ingest", "functions.ingest.app:app", self.options.ports.ingest),
            ("api", "functions.api.app:app", self.options.ports.api),
        ):
            self._spawn(
                name,
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    target,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
            )
        self._wait_http(f"http://127.0.0.1:{self.options.ports.ingest}/healthz")
        self._wait_http(self.api_url + "/healthz")

    def _start_deliver_poller(self) -> None:
        from functions.deliver.handler import handler as deliver_handler

        poller = SqsPoller(deliver_handler, aws.deliveries_queue_url(), concurrency=2, function_name="deliver")
        self.pollers.append(poller.start())

    def _start_schedules(self) -> None:
        from functions.cleanup.handler import handler as cleanup_handler
        from functions.retry_scheduler.handler import handler as retry_handler

        handlers = {"cleanup": cleanup_handler, "retry_scheduler": retry_handler}
        for local in schedules.create_schedules():
            function = LocalLambda(local.schedule.function, handlers[local.schedule.function])
            self.lambdas.append(function)
            thread = threading.Thread(
                target=schedules.run_schedule,
                args=(local, function, self.stop_schedules),
                daemon=True,
                name=f"schedule-{local.schedule.name}",
            )
            thread.start()
            self.schedule_threads.append(thread)

    def start_worker(self, worker_id: str, health_port: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "session_workers", "--worker-id", worker_id, "--health-port", str(health_port)]
        if self.options.real_whatsapp:
            command += ["--whatsapp-url", "https://web.whatsapp.com/"]
        process = self._spawn(worker_id, command, extra_env=self.options.worker_env)
        self._wait_http(f"http://127.0.0.1:{health_port}/healthz", timeout=60)
        return process

    def kill_worker(self, worker_id: str) -> None:
        """SIGKILL, as a crashed ECS task: no graceful handover."""
        process = self.processes.pop(worker_id)
        process.kill()
        process.wait(10)

    def _spawn(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.options.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, **self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def _wait_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{url} did not answer within {timeout}s (logs in {self.options.workdir})")

    # Demo tenant ---------------------------------------------------------------------------------
    def create_demo_tenant(self, name: str = "Demo workspace") -> Demo:
        """A workspace, its API key and a webhook endpoint on the local receiver, all through the API."""
        admin = {"Authorization": f"Bearer {get_settings().admin_api_key.get_secret_value() or DEV_ADMIN_KEY}"}
        with httpx.Client(base_url=self.api_url, timeout=30) as http:
            workspace = http.post("/v1/admin/workspaces", json={"name": name}, headers=admin)
            workspace.raise_for_status()
            workspace_id = workspace.json()["id"]
            key = http.post(
                f"/v1/admin/workspaces/{workspace_id}/keys",
                json={"name": "demo", "scopes": ["read", "send", "manage"]},
                headers=admin,
            )
            key.raise_for_status()
            api_key = key.json()["key"]
            endpoint = http.post(
                "/v1/endpoints",
                json={"url": self.receiver.url, "description": "local receiver"},
                headers={"Authorization": f"Bearer {api_key}"},
            )
            endpoint.raise_for_status()
        created = endpoint.json()
        self.receiver_state.secrets[created["id"]] = created["secret"]
        self.demo = Demo(workspace_id, api_key, created["id"], created["secret"])
        return self.demo

    # Stop ----------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop in dependency order: the pollers (they need SQS and Redis), then the processes, then services."""
        self.stop_schedules.set()
        for poller in self.pollers:
            poller.stop()
        for thread in self.schedule_threads:
            thread.join(10)
        for function in self.lambdas:
            function.close()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for name, process in list(self.processes.items()):
            try:
                process.wait(30 if name.startswith("worker") else 10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes.clear()
        self.receiver.stop()
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        self._restore_environment()


# `make run` publishes where its services listen, so `wagw status` / `redrive` / `keys` / `cleanup` in another
# terminal reach them without any setup.
RUNNING_ENVIRONMENT = REPO_ROOT / ".run" / "local-env.json"


def publish_environment(system: LocalSystem, path: Path = RUNNING_ENVIRONMENT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**system.env, "WAGW_API_URL": system.api_url}, indent=2))


def withdraw_environment(path: Path = RUNNING_ENVIRONMENT) -> None:
    path.unlink(missing_ok=True)


def adopt_running_environment(path: Path = RUNNING_ENVIRONMENT) -> bool:
    """Point this process at the system `make run` started, unless it was pointed somewhere already
    (WAGW_REDIS_URL or AWS_ENDPOINT_URL set). Returns whether it did."""
    if not path.exists() or "WAGW_REDIS_URL" in os.environ or "AWS_ENDPOINT_URL" in os.environ:
        return False
    for name, value in json.loads(path.read_text()).items():
        os.environ.setdefault(name, value)
    get_settings.cache_clear()
    aws.reset_clients()
    return True

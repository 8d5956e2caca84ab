"""Synthesize every environment once per session, with the npm `aws-cdk` CLI and cdk.json, as a deployer would.

Offline and without Docker: `wagw:installDependencies=false` puts a marker in the dependencies layer instead of
running pip; everything else (local bundling of each function, the worker image's build context, cdk-nag as a
validation plugin) runs for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# jsii warns on every start that this machine's Node is past its end of life; keep the output readable.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_CLI = REPO_ROOT / "node_modules" / ".bin" / "cdk"
ENVIRONMENTS = ("dev", "staging", "prod")
SYNTH_TIMEOUT_SECONDS = 420


@dataclass
class Synthesized:
    env: str
    outdir: Path
    seconds: float
    json: dict[str, Any] = field(repr=False)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.json["Resources"]
        return resources

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == type_}


# CDK's built-in template validation (CloudFormationValidatePlugin) costs ~10 s of CPU per synth; cfn-lint covers
# the same ground in test_synth.py, so it runs for prod only (cdk-nag, a plugin of ours, runs for all three).
BUILTIN_VALIDATION = {"dev": False, "staging": False, "prod": True}


def cli_environment(env: str) -> dict[str, str]:
    return {
        **os.environ,
        "CDK_VALIDATION": "true" if BUILTIN_VALIDATION[env] else "false",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }


# Outside dev the app refuses to synthesize without an alarm subscriber; the deployer passes one like this.
ALARM_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:wagw-oncall"


def cli_command(env: str, outdir: Path) -> list[str]:
    subscriber = [] if env == "dev" else ["--context", f"wagw:alarmTopicArn={ALARM_TOPIC_ARN}"]
    return [
        str(CDK_CLI),
        "synth",
        "--context",
        f"env={env}",
        *subscriber,
        "--context",
        "wagw:installDependencies=false",
        "--output",
        str(outdir),
        "--no-notices",
        "--quiet",
    ]


class SynthCache:
    """Starts `cdk synth` for every environment at once (the CLI runs one app process each), then hands out the
    results as tests ask for them: one synth per environment per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._started = time.monotonic()
        self._running = {
            env: subprocess.Popen(
                cli_command(env, root / env),
                cwd=REPO_ROOT,
                env=cli_environment(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for env in ENVIRONMENTS
        }
        self._done: dict[str, Synthesized] = {}

    def __call__(self, env: str) -> Synthesized:
        if env not in self._done:
            process = self._running[env]
            stdout, stderr = process.communicate(timeout=SYNTH_TIMEOUT_SECONDS)
            assert process.returncode == 0, f"cdk synth -c env={env} failed:\n{stdout[-4000:]}\n{stderr[-8000:]}"
            outdir = self.root / env
            template = json.loads((outdir / f"WaGateway-{env}.template.json").read_text())
            self._done[env] = Synthesized(env, outdir, time.monotonic() - self._started, template)
        return self._done[env]

    def close(self) -> None:
        for process in self._running.values():
            if process.poll() is None:
                process.kill()
                process.communicate()


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthCache]:
    cache = SynthCache(tmp_path_factory.mktemp("cdk"))
    try:
        yield cache
    finally:
        cache.close()


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def each_env(request: pytest.FixtureRequest, synthesized: SynthCache) -> Synthesized:
    return synthesized(request.param)


@pytest.fixture(scope="session")
def dev(synthesized: SynthCache) -> Synthesized:
    return synthesized("dev")


@pytest.fixture(scope="session")
def staging(synthesized: SynthCache) -> Synthesized:
    return synthesized("staging")


@pytest.fixture(scope="session")
def prod(synthesized: SynthCache) -> Synthesized:
    return synthesized("prod")

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

    def one(self, type_: str, logical_prefix: str) -> tuple[str, dict[str, Any]]:
        found = {k: v for k, v in self.of_type(type_).items() if k.startswith(logical_prefix)}
        assert len(found) == 1, f"expected one {type_} named {logical_prefix}*, found {sorted(found)}"
        return next(iter(found.items()))

    def template(self) -> Any:
        from aws_cdk.assertions import Template

        return Template.from_json(self.json)


def cli_environment() -> dict[str, str]:
    return {
        **os.environ,
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }


def cli_synth(env: str, outdir: Path) -> Synthesized:
    command = [
        str(CDK_CLI),
        "synth",
        "--context",
        f"env={env}",
        "--context",
        "wagw:installDependencies=false",
        "--output",
        str(outdir),
        "--no-notices",
        "--quiet",
    ]
    if os.environ.get("WAGW_CDK_APP"):  # a development hook: another app command (e.g. over a scratch tree)
        command += ["--app", os.environ["WAGW_CDK_APP"]]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=cli_environment(),
        capture_output=True,
        text=True,
        timeout=SYNTH_TIMEOUT_SECONDS,
        check=False,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, f"cdk synth -c env={env} failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    template = json.loads((outdir / f"WaGateway-{env}.template.json").read_text())
    return Synthesized(env=env, outdir=outdir, seconds=seconds, json=template)


class SynthCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: dict[str, Synthesized] = {}

    def __call__(self, env: str) -> Synthesized:
        if env not in self._done:
            self._done[env] = cli_synth(env, self.root / env)
        return self._done[env]


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthCache:
    return SynthCache(tmp_path_factory.mktemp("cdk"))


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

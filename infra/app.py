"""CDK entry point: `cdk synth|deploy -c env=dev|staging|prod`.

The only place that reads context: the environment name (`env`), the per-environment settings
(`wagw:environments` in cdk.json), and two switches for tests and CI:
- `wagw:installDependencies` (default true): false puts a marker instead of pip-installed packages in the layer;
- `wagw:nag` (default true): run cdk-nag's AwsSolutions pack as a validation plugin (any finding that is not
  acknowledged in infra/nag.py fails the synth).
And two for the deployer, overriding cdk.json's `alarms.email` / `alarms.topic_arn` (outside dev one of them is
required): `wagw:alarmEmail`, `wagw:alarmTopicArn`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python infra/app.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import EnvironmentConfig
from infra.stack import WaGatewayStack

REPO_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS_KEY = "wagw:environments"
ALARM_SUBSCRIBER_KEYS = {"wagw:alarmEmail": "email", "wagw:alarmTopicArn": "topic_arn"}


def cdk_json_context() -> dict[str, Any]:
    """The context of cdk.json, for running this file without the CDK CLI (which passes it itself)."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


def _flag(app: cdk.App, key: str, default: bool) -> bool:
    value = app.node.try_get_context(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def select_environment(
    environments: dict[str, Any] | None, name: Any, alarm_subscribers: dict[str, str] | None = None
) -> EnvironmentConfig:
    """The typed settings of environment `name` from the `wagw:environments` context; `alarm_subscribers`
    (`email`, `topic_arn`) override its alarms' subscribers."""
    if not environments:
        raise ValueError(f"cdk.json has no '{ENVIRONMENTS_KEY}' context")
    if name not in environments:
        raise ValueError(f"choose an environment with -c env=<name>, one of: {', '.join(environments)} (got {name!r})")
    raw = dict(environments[name])
    if alarm_subscribers:
        raw["alarms"] = {**raw.get("alarms", {}), **alarm_subscribers}
    return EnvironmentConfig.model_validate({"name": name, **raw})


def environment_config(app: cdk.App) -> EnvironmentConfig:
    subscribers = {
        field: str(value)
        for key, field in ALARM_SUBSCRIBER_KEYS.items()
        if (value := app.node.try_get_context(key)) not in (None, "")
    }
    config = select_environment(
        app.node.try_get_context(ENVIRONMENTS_KEY), app.node.try_get_context("env"), subscribers
    )
    config.alarms.require_subscriber(config.name)
    return config


def build(app: cdk.App) -> WaGatewayStack:
    config = environment_config(app)
    stack = WaGatewayStack(
        app,
        config.stack_name,
        config=config,
        install_dependencies=_flag(app, "wagw:installDependencies", True),
        env=cdk.Environment(account=config.account or os.environ.get("CDK_DEFAULT_ACCOUNT"), region=config.region),
        description=f"wa-gateway ({config.name}): API, ingest, deliveries, session workers, Redis",
    )
    if _flag(app, "wagw:nag", True):
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack


def main() -> None:
    app = cdk.App(
        context=None if "CDK_CONTEXT_JSON" in os.environ or "CDK_OUTDIR" in os.environ else cdk_json_context()
    )
    build(app)
    app.synth()


if __name__ == "__main__":
    main()

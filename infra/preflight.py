"""Checks to run before `cdk deploy`: `.venv/bin/python -m infra.preflight <env>` (exit 1 when one fails).

Reserved concurrency: Lambda refuses a reservation that would leave the account fewer than 100 unreserved
concurrent executions, so the account's concurrency quota must be at least the environment's reservations plus 100
(staging 52 + 100, prod 252 + 100). A fresh account's quota is 10: the deploy would fail half-way (CloudFormation
rolls back) without this check.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from infra.config import EnvironmentConfig

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"

UNRESERVED_MINIMUM = 100


def reserved_concurrency(config: EnvironmentConfig) -> int:
    functions = config.functions
    parts = (functions.api, functions.ingest, functions.deliver, functions.retry_scheduler, functions.cleanup)
    return sum(part.reserved_concurrency or 0 for part in parts)


def required_account_concurrency(config: EnvironmentConfig) -> int:
    reserved = reserved_concurrency(config)
    return reserved + UNRESERVED_MINIMUM if reserved else 0


@dataclass(frozen=True)
class ConcurrencyCheck:
    env: str
    reserved: int
    required: int
    account_limit: int

    @property
    def ok(self) -> bool:
        return self.account_limit >= self.required

    def describe(self) -> str:
        verdict = "ok" if self.ok else "TOO LOW: request a higher 'Concurrent executions' quota (Service Quotas)"
        return (
            f"{self.env}: reserved concurrency {self.reserved}, needs an account quota of at least {self.required}"
            f" (reservations + {UNRESERVED_MINIMUM} unreserved); the account has {self.account_limit}: {verdict}"
        )


def account_concurrency_limit(region: str) -> int:
    """The account's concurrent-executions quota in `region` (AWS_ENDPOINT_URL points it at LocalStack in tests)."""
    import boto3

    settings = boto3.client("lambda", region_name=region).get_account_settings()
    return int(settings["AccountLimit"]["ConcurrentExecutions"])


def check_concurrency(config: EnvironmentConfig) -> ConcurrencyCheck:
    return ConcurrencyCheck(
        env=config.name,
        reserved=reserved_concurrency(config),
        required=required_account_concurrency(config),
        account_limit=account_concurrency_limit(config.region),
    )


def environment(name: str) -> EnvironmentConfig:
    """One environment of cdk.json, read without loading the CDK (infra/app.py does the same for a synth)."""
    environments = json.loads(CDK_JSON.read_text())["context"]["wagw:environments"]
    if name not in environments:
        raise SystemExit(f"unknown environment {name!r}; one of: {', '.join(environments)}")
    return EnvironmentConfig.model_validate({"name": name, **environments[name]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("env", help="the environment to deploy: dev, staging or prod")
    args = parser.parse_args(argv)
    config = environment(args.env)
    check = check_concurrency(config)
    print(check.describe())
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Per-environment configuration, Lambda packaging and the optional custom domain, without a full synth."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from infra import bundling
from infra.app import ENVIRONMENTS_KEY, cdk_json_context, select_environment
from infra.config import EnvironmentConfig
from tests.infra.conftest import ENVIRONMENTS, REPO_ROOT


@pytest.fixture(scope="module")
def environments() -> dict[str, Any]:
    return copy.deepcopy(cdk_json_context()[ENVIRONMENTS_KEY])


def test_cdk_json_defines_exactly_the_three_environments(environments: dict[str, Any]) -> None:
    assert set(environments) == set(ENVIRONMENTS)
    for name, raw in environments.items():
        config = EnvironmentConfig.model_validate({"name": name, **raw})
        assert config.stack_name == f"WaGateway-{name}"


def test_prod_is_sized_and_protected_beyond_dev(environments: dict[str, Any]) -> None:
    dev = EnvironmentConfig.model_validate({"name": "dev", **environments["dev"]})
    prod = EnvironmentConfig.model_validate({"name": "prod", **environments["prod"]})
    assert len(prod.network.availability_zones) == 3 and prod.network.nat_gateways == 3
    assert dev.network.nat_gateways == 1
    assert prod.redis.replicas >= 1 and prod.retain_data and prod.termination_protection
    assert prod.workers.min_count > dev.workers.min_count


# docs/capacity.md: browser memory per `profile` session on the heavy page after a restore (docs/benchmarks.md,
# Sessions, "Page weight"), and a worker's fixed memory (its Python and Playwright's driver) plus 1 MiB a session.
HEAVY_PROFILE_SESSION_MIB = 305
WORKER_FIXED_MIB = 205


def test_prod_workers_follow_the_capacity_plan(environments: dict[str, Any]) -> None:
    # Given prod's workers block
    workers = EnvironmentConfig.model_validate({"name": "prod", **environments["prod"]}).workers
    # Then a task's capacity of heavy pages fits in 80 % of its memory (the rest for restores and spikes)
    assert workers.sessions_per_task * (HEAVY_PROFILE_SESSION_MIB + 1) <= 0.8 * workers.memory_mib - WORKER_FIXED_MIB
    # And the largest fleet, one task kept spare, holds the old system's 1,000 sessions at the autoscaling target
    assert (workers.max_count - 1) * workers.target_sessions_per_task >= 1000
    # And no more tasks than that plan needs (a cap well above it would hide a runaway scale-out)
    assert (workers.max_count - 2) * workers.target_sessions_per_task < 1000


def test_staging_may_have_one_nat_gateway_per_az_but_not_more(environments: dict[str, Any]) -> None:
    # Given staging's settings with one NAT per AZ, then with one more than its AZs
    staging = environments["staging"]
    per_az = {
        **staging,
        "network": {**staging["network"], "nat_gateways": len(staging["network"]["availability_zones"])},
    }
    too_many = {**per_az, "network": {**per_az["network"], "nat_gateways": per_az["network"]["nat_gateways"] + 1}}
    # Then the first is a valid staging, the second is refused
    assert EnvironmentConfig.model_validate({"name": "staging", **per_az}).network.nat_gateways == 2
    with pytest.raises(ValidationError, match="nat_gateways cannot exceed"):
        EnvironmentConfig.model_validate({"name": "staging", **too_many})


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_outside_dev_the_app_refuses_to_synthesize_without_an_alarm_subscriber(env: str) -> None:
    import aws_cdk as cdk

    from infra.app import build

    # Given cdk.json, whose staging and prod name no alarm subscriber
    context = {**cdk_json_context(), "env": env}
    # When the app is built without one
    # Then it refuses, saying how to name one
    with pytest.raises(ValueError, match=r"alarms need a subscriber.*wagw:alarmEmail"):
        build(cdk.App(context=context))
    # And dev needs none, while a bad topic ARN is refused
    select_environment(context[ENVIRONMENTS_KEY], "dev").alarms.require_subscriber("dev")
    with pytest.raises(ValidationError, match="topic_arn"):
        select_environment(context[ENVIRONMENTS_KEY], env, {"topic_arn": "my-topic"})


def test_a_typo_in_cdk_json_is_refused(environments: dict[str, Any]) -> None:
    raw = environments["dev"]
    raw["redis"]["node_typ"] = raw["redis"].pop("node_type")
    with pytest.raises(ValidationError, match="node_typ"):
        EnvironmentConfig.model_validate({"name": "dev", **raw})


def test_deliver_timeout_cannot_drift_from_the_topology(environments: dict[str, Any]) -> None:
    raw = environments["dev"]
    raw["functions"]["deliver"]["timeout_seconds"] = 900
    with pytest.raises(ValidationError, match="topology"):
        EnvironmentConfig.model_validate({"name": "dev", **raw})


def test_unknown_environment_is_refused_with_the_choices(environments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="dev, staging, prod"):
        select_environment(environments, "qa")
    with pytest.raises(ValueError, match="-c env=<name>"):
        select_environment(environments, None)


def test_lambda_requirements_are_the_pinned_runtime_dependencies_minus_cli_and_browser() -> None:
    requirements = bundling.lambda_requirements()
    names = {bundling._requirement_name(r) for r in requirements}
    assert {"pydantic", "redis", "fastapi", "mangum", "aws-lambda-powertools", "httpx", "boto3"} <= names
    assert names.isdisjoint({"playwright", "typer", "rich", "uvicorn"})
    assert all("==" in r for r in requirements)


def test_pip_installs_binary_wheels_for_lambda_arm64(tmp_path: Path) -> None:
    command = bundling.pip_command(tmp_path / "python", tmp_path / "requirements.txt")
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--python-version 3.11" in joined
    assert "--only-binary=:all:" in command
    assert f"--target {tmp_path / 'python'}" in joined


def _tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel pip can install offline (the layer's pip flags accept py3-none-any)."""
    wheel = folder / "tinydep-1.0-py3-none-any.whl"
    files = {
        "tinydep/__init__.py": "VALUE = 1\n",
        "tinydep-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "tinydep-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in {**files, "tinydep-1.0.dist-info/RECORD": record}.items():
            archive.writestr(name, text)
    return wheel


def test_dependencies_layer_ships_bytecode_that_a_read_only_opt_never_recompiles(tmp_path: Path) -> None:
    # Given a requirement pip installs offline
    wheel = _tiny_wheel(tmp_path)
    # When the layer is bundled for real
    out = tmp_path / "layer"
    out.mkdir()
    assert bundling.DependenciesBundler([str(wheel)], install=True).try_bundle(str(out)) is True
    # Then each module has a .pyc for Lambda's Python, hash-based and never checked against its source
    (pyc,) = (out / "python" / "tinydep" / "__pycache__").glob("__init__.cpython-311*.pyc")
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01, "expected an unchecked-hash pyc (PEP 552)"


def test_dependencies_layer_without_install_holds_only_a_marker(tmp_path: Path) -> None:
    bundler = bundling.DependenciesBundler(["pydantic==2.13.4"], install=False)
    assert bundler.try_bundle(str(tmp_path)) is True
    assert [p.name for p in (tmp_path / "python").iterdir()] == [bundling.NOT_INSTALLED_MARKER]


def test_function_bundle_copies_shared_and_the_package(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "shared" / "__pycache__").mkdir(parents=True)
    (root / "shared" / "settings.py").write_text("x = 1\n")
    (root / "shared" / "__pycache__" / "settings.cpython-311.pyc").write_bytes(b"")
    (root / "functions" / "deliver").mkdir(parents=True)
    (root / "functions" / "__init__.py").write_text("")
    (root / "functions" / "deliver" / "handler.py").write_text("def handler(event, context): ...\n")
    (root / "functions" / "api").mkdir()
    out = tmp_path / "out"
    out.mkdir()

    assert bundling.FunctionCodeBundler("deliver", root).try_bundle(str(out)) is True

    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["functions/__init__.py", "functions/deliver/handler.py", "shared/settings.py"]


def test_function_bundle_refuses_a_package_without_handler(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "functions" / "api").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"handler\.py"):
        bundling.FunctionCodeBundler("api", tmp_path).try_bundle(str(tmp_path / "out"))


def test_custom_domain_gets_a_dns_validated_certificate_and_an_alias_and_is_the_only_way_in() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk.assertions import Template

    from infra.components.api import Api
    from infra.config import ApiConfig, DomainConfig

    # built-in template validation off: a 10 s CPU cost for a fragment that cfn-lint-checked synths already cover
    app = cdk.App(builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "DomainTest", env=cdk.Environment(region="us-east-1"))
    code = lambda_.Code.from_inline("def handler(event, context): ...")

    def fn(name: str) -> lambda_.Function:
        return lambda_.Function(stack, name, runtime=lambda_.Runtime.PYTHON_3_11, handler="index.handler", code=code)

    config = ApiConfig(
        throttle_rate_limit=10,
        throttle_burst_limit=20,
        domain=DomainConfig(domain_name="api.example.com", hosted_zone_id="Z123", hosted_zone_name="example.com"),
    )
    api = Api(
        stack,
        "Api",
        config=config,
        metrics_namespace="WaGateway/test",
        api_function=fn("ApiFn"),
        ingest_function=fn("IngestFn"),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )

    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {"DomainName": "api.example.com", "ValidationMethod": "DNS"},
    )
    template.has_resource_properties("AWS::ApiGatewayV2::DomainName", {"DomainName": "api.example.com"})
    template.resource_count_is("AWS::ApiGatewayV2::ApiMapping", 1)
    template.has_resource_properties("AWS::ApiGatewayV2::Api", {"DisableExecuteApiEndpoint": True})
    template.has_resource_properties(
        "AWS::Route53::RecordSet", {"Name": "api.example.com.", "Type": "A", "HostedZoneId": "Z123"}
    )
    assert api.url == "https://api.example.com/"


def test_cdk_json_runs_the_app_from_the_project_virtualenv() -> None:
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk_json["app"] == ".venv/bin/python infra/app.py"

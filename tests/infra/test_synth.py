"""The CDK CLI synthesizes every environment from cdk.json; cdk-nag and cfn-lint find nothing left unexplained."""

from __future__ import annotations

import json

from cfnlint.api import lint

from tests.infra.conftest import ENVIRONMENTS, SynthCache, Synthesized


def test_cdk_cli_synthesizes_every_environment(synthesized: SynthCache) -> None:
    # Given cdk.json and the npm aws-cdk CLI
    # When `cdk synth -c env=<env>` runs for each environment
    results = [synthesized(env) for env in ENVIRONMENTS]
    # Then each produces its own stack template, with its own settings
    for result in results:
        assert result.json["Resources"], f"{result.env}: empty template"
        manifest = json.loads((result.outdir / "manifest.json").read_text())
        assert f"WaGateway-{result.env}" in manifest["artifacts"]
        assert result.json["Description"].startswith(f"wa-gateway ({result.env})")


def test_cdk_nag_has_no_unacknowledged_finding(each_env: Synthesized) -> None:
    # Given the AwsSolutions pack ran as a validation plugin during the synth
    report = json.loads((each_env.outdir / "validation-report.json").read_text())
    (pack,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    # Then nothing is left unacknowledged, and every acknowledgment carries its reason
    assert pack["violations"] == [], json.dumps(pack["violations"], indent=1)[:4000]
    assert pack["conclusion"] == "success"
    for suppressed in pack["suppressedViolations"]:
        assert len(suppressed.get("reason", "").strip()) >= 20, suppressed["ruleName"]


def test_cfn_lint_finds_no_error(each_env: Synthesized) -> None:
    # Given the synthesized template
    # When cfn-lint checks it for the stack's region
    matches = lint(json.dumps(each_env.json), regions=["us-east-1"])
    # Then there is no error (warnings, such as hard-coded AZ names chosen on purpose, are allowed)
    errors = [f"{m.rule.id} {m.message} at {'/'.join(map(str, m.path))}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []

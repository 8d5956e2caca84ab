"""`python -m infra.preflight <env>` checks the account's Lambda concurrency quota against the environment's
reservations (plus the 100 Lambda keeps unreserved), here against LocalStack's Lambda API."""

from __future__ import annotations

import pytest

from infra import preflight


@pytest.mark.parametrize(("env", "reserved", "required"), [("staging", 52, 152), ("prod", 252, 352)])
def test_reservations_need_their_sum_plus_100_of_account_quota(env: str, reserved: int, required: int) -> None:
    # Given an environment of cdk.json
    config = preflight.environment(env)
    # Then its reservations, and the quota they need, are the figures docs/deploy.md states
    assert preflight.reserved_concurrency(config) == reserved
    assert preflight.required_account_concurrency(config) == required


def test_preflight_reads_the_account_quota_and_passes_or_refuses(aws_endpoint: str) -> None:
    # Given the account's quota, read through the Lambda API
    limit = preflight.account_concurrency_limit("us-east-1")
    # When prod is checked
    check = preflight.check_concurrency(preflight.environment("prod"))
    # Then it passes when the quota covers reservations + 100, and says what it found
    assert check.account_limit == limit and check.ok is (limit >= 352)
    assert "needs an account quota of at least 352" in check.describe()
    # And an environment reserving more than the quota allows is refused with exit code 1
    greedy = preflight.environment("prod").model_copy(deep=True)
    deliver = greedy.functions.deliver.model_copy(update={"reserved_concurrency": limit})
    greedy = greedy.model_copy(update={"functions": greedy.functions.model_copy(update={"deliver": deliver})})
    refused = preflight.check_concurrency(greedy)
    assert not refused.ok and "TOO LOW" in refused.describe()
    assert preflight.main(["prod"]) == (0 if limit >= 352 else 1)

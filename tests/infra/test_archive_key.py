"""The KMS key that seals auth archives: rotated, in the workers' environment, usable by the worker role only."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synthesized
from tests.infra.test_resources import logical, refs


def key_id(s: Synthesized) -> str:
    return logical(s, "AWS::KMS::Key", "ArchiveKey")[0]


def roles_granted(s: Synthesized, action: str, resource: str) -> set[str]:
    """Logical ids of the roles whose policies allow `action` on `resource`."""
    roles: set[str] = set()
    for policy in s.of_type("AWS::IAM::Policy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if action in actions and resource in refs(st["Resource"]):
                roles |= refs(policy["Properties"]["Roles"])
    return roles


def test_the_archive_key_rotates_and_reaches_the_workers(each_env: Synthesized) -> None:
    key: dict[str, Any] = each_env.of_type("AWS::KMS::Key")[key_id(each_env)]["Properties"]
    assert key["EnableKeyRotation"] is True
    task = next(iter(each_env.of_type("AWS::ECS::TaskDefinition").values()))["Properties"]
    environment = {e["Name"]: e["Value"] for e in task["ContainerDefinitions"][0]["Environment"]}
    assert refs(environment["WAGW_AUTH_KMS_KEY_ID"]) == {key_id(each_env)}


def test_only_the_worker_role_may_open_or_seal_archives_and_only_for_archives(each_env: Synthesized) -> None:
    s = each_env
    worker_role = logical(s, "AWS::IAM::Role", "WorkersTaskTaskRole")[0]
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert roles_granted(s, action, key_id(s)) == {worker_role}, action
    statements = [
        st
        for policy in s.of_type("AWS::IAM::Policy").values()
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if key_id(s) in refs(st["Resource"]) and "kms:Decrypt" in st["Action"]
    ]
    assert all(
        st["Condition"] == {"StringEquals": {"kms:EncryptionContext:wagw:purpose": "auth-archive"}} for st in statements
    )

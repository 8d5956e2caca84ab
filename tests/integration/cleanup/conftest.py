from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_s3_unless_asked(env: pytest.MonkeyPatch) -> None:
    """Cleanup tests run without S3 (no AWS here) unless a test points settings at LocalStack."""
    env.setenv("WAGW_CLEANUP_S3_ENABLED", "false")

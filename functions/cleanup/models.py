"""Cleanup's output model: what one run did (or, dry, would do)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from functions.cleanup.rules import Rule


def zero_counts() -> dict[str, int]:
    return {rule.value: 0 for rule in Rule}


class PlannedAction(BaseModel):
    rule: Rule
    session_id: str
    workspace_id: str = ""
    detail: str = ""


class CleanupResult(BaseModel):
    dry_run: bool = False
    skipped: bool = False
    skipped_reason: str | None = None
    scanned: int = 0
    pass_complete: bool = False
    counts: dict[str, int] = Field(default_factory=zero_counts)
    events_emitted: int = 0
    events_pending: int = 0
    auth_entries_checked: int = 0
    s3_objects_checked: int = 0
    keys_ttl_checked: int = 0
    errors: int = 0
    duration_ms: int = 0
    scan_ms: int = 0
    sessions_per_second: float = 0.0
    actions: list[PlannedAction] = Field(default_factory=list)

    def add(self, rule: Rule, n: int = 1) -> None:
        self.counts[rule.value] = self.counts.get(rule.value, 0) + n

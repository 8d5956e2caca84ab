"""Ingest logic: one signed batch in, a per-event outcome out; nothing recorded unless it is all valid."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from redis.asyncio import Redis

from functions.ingest import fanout, state
from functions.ingest.errors import InvalidBatch, PayloadTooLarge, QueueUnavailable, Unauthenticated, UnknownTenant
from functions.ingest.models import EventBatch
from shared import throttle
from shared.events import EVENT_TYPES, Event, SessionStatus, SessionStatusEvent, throttle_class
from shared.observability import logger, metrics
from shared.producer import EventResult, IngestResponse, Outcome
from shared.producer_keys import producer_keys
from shared.settings import get_settings
from shared.signing import SignatureError, verify
from shared.store.sessions import session_workspaces
from shared.store.workspaces import workspaces_exist

FUTURE_SKEW = timedelta(minutes=5)
_ADMISSION_OUTCOME = {
    throttle.Admission.ACCEPTED: Outcome.ACCEPTED,
    throttle.Admission.DUPLICATE: Outcome.DUPLICATE,
    throttle.Admission.THROTTLED: Outcome.THROTTLED,
    throttle.Admission.DROPPED: Outcome.DROPPED,
    throttle.Admission.IN_FLIGHT: Outcome.THROTTLED,  # the producer keeps it and asks again after retry_after
}
IN_FLIGHT_REASON = "an earlier copy of this event is still being processed"


async def ingest_batch(
    redis: Redis, *, body: bytes, headers: Mapping[str, str], source_ip: str | None
) -> IngestResponse:
    settings = get_settings()
    if len(body) > settings.max_body_bytes:
        raise PayloadTooLarge(f"body is {len(body)} bytes; the limit is {settings.max_body_bytes}")
    key_name = _authenticate(body, headers)
    batch = _parse(body)
    await _check_tenants(redis, batch.events)
    bypass = key_name in settings.trusted_producers or _trusted_source(source_ip)
    results: dict[str, EventResult] = {}
    admissible = []
    for event in batch.events:
        rejection = _stale_or_future(event)
        if rejection:
            results[event.id] = EventResult(id=event.id, outcome=Outcome.REJECTED, reason=rejection)
        else:
            admissible.append(event)
    decisions = await throttle.admit(
        redis,
        [throttle.AdmissionRequest(e.id, e.workspace_id, throttle_class(e), bypass) for e in admissible],
    )
    accepted: list[Event] = []
    for event, decision in zip(admissible, decisions, strict=True):
        outcome = _ADMISSION_OUTCOME[decision.admission]
        retry_after = decision.retry_after_seconds if outcome is Outcome.THROTTLED else None
        reason = IN_FLIGHT_REASON if decision.admission is throttle.Admission.IN_FLIGHT else None
        results[event.id] = EventResult(id=event.id, outcome=outcome, retry_after=retry_after, reason=reason)
        if outcome is Outcome.ACCEPTED:
            accepted.append(event)
    await _record_and_fan_out(redis, accepted)
    for outcome, count in Counter(r.outcome for r in results.values()).items():
        metrics.add_metric(name=f"events_{outcome.value}", unit="Count", value=count)
    failed = sum(1 for e in accepted if isinstance(e, SessionStatusEvent) and e.data.status is SessionStatus.FAILED)
    if failed:  # the SessionsFailed alarm (infra/components/observability.py)
        metrics.add_metric(name="sessions_failed", unit="Count", value=failed)
    return IngestResponse(results=[results[e.id] for e in batch.events])


async def _record_and_fan_out(redis: Redis, accepted: list[Event]) -> None:
    """Apply and enqueue the accepted events, then confirm their dedupe marks. Whatever fails on the way
    releases the marks of what was not enqueued, so the producer's retry is accepted, not called a duplicate."""
    try:
        caused: list[Event] = []
        for event in accepted:
            caused.extend(await state.apply_event(redis, event))
        deliveries = await fanout.deliveries_for(redis, accepted + caused)
        failed_event_ids = await fanout.enqueue(deliveries)
    except BaseException:
        await _release(redis, [e.id for e in accepted])
        raise
    await _confirm(redis, [e.id for e in accepted if e.id not in failed_event_ids])
    if failed_event_ids:
        await _release(redis, sorted(failed_event_ids))
        logger.error("deliveries queue refused messages", extra={"events": len(failed_event_ids)})
        raise QueueUnavailable(
            "the deliveries queue did not take every event; retry the batch", failed_events=sorted(failed_event_ids)
        )


async def _confirm(redis: Redis, event_ids: list[str]) -> None:
    # The events are on the queue: failing here must not fail the batch (its retry would enqueue them again).
    # Unconfirmed marks lapse after `dedupe_pending_seconds`; a copy sent later than that is delivered twice,
    # with the same webhook-id.
    try:
        await throttle.confirm(redis, event_ids)
    except Exception:
        logger.exception("could not confirm dedupe marks", extra={"events": len(event_ids)})


async def _release(redis: Redis, event_ids: list[str]) -> None:
    # Best effort: when Redis itself is what failed, the pending marks lapse by themselves.
    try:
        await throttle.forget(redis, event_ids)
    except Exception:
        logger.exception("could not release dedupe marks", extra={"events": len(event_ids)})


def _authenticate(body: bytes, headers: Mapping[str, str]) -> str:
    try:
        return verify(producer_keys(), headers, body, tolerance_seconds=get_settings().signature_tolerance_seconds)
    except SignatureError as exc:
        raise Unauthenticated(str(exc)) from exc


def _parse(body: bytes) -> EventBatch:
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidBatch(f"body is not valid JSON: {exc}") from exc
    try:
        return EventBatch.model_validate(raw)
    except ValidationError as exc:
        fields = [{"field": _field_path(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        first = fields[0]
        raise InvalidBatch(f"{first['field']}: {first['message']}", errors=fields) from exc


def _field_path(location: tuple[int | str, ...]) -> str:
    # Drop the discriminator tag pydantic inserts after the index ("events.3.session.status.data...").
    parts: list[str] = []
    for index, part in enumerate(location):
        if index > 0 and isinstance(location[index - 1], int) and part in EVENT_TYPES:
            continue
        parts.append(f"[{part}]" if isinstance(part, int) else ("." if parts else "") + part)
    return "".join(parts) or "body"


async def _check_tenants(redis: Redis, events: list[Event]) -> None:
    workspace_ids = sorted({e.workspace_id for e in events})
    known_workspaces = await workspaces_exist(redis, workspace_ids)
    unknown = [w for w in workspace_ids if not known_workspaces[w]]
    if unknown:
        raise UnknownTenant(f"unknown workspace {unknown[0]}", workspace_id=unknown[0])
    owners = await session_workspaces(redis, sorted({e.session_id for e in events}))
    for event in events:
        if owners.get(event.session_id) != event.workspace_id:
            raise UnknownTenant(
                f"unknown session {event.session_id} in workspace {event.workspace_id}", session_id=event.session_id
            )


def _stale_or_future(event: Event) -> str | None:
    now = datetime.now(UTC)
    occurred = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(tzinfo=UTC)
    if occurred > now + FUTURE_SKEW:
        return "occurred_at is more than 5 minutes in the future"
    if occurred < now - timedelta(seconds=get_settings().dedupe_ttl_seconds):
        return "occurred_at is older than the dedupe window"
    return None


def _trusted_source(source_ip: str | None) -> bool:
    if not source_ip:
        return False
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in get_settings().trusted_cidrs)

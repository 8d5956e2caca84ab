"""What accepted events change in Redis: session status, latest QR or pairing code, message status."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from shared.events import (
    Event,
    MessageAckEvent,
    MessageFailedData,
    MessageFailedEvent,
    MessageSentData,
    MessageSentEvent,
    SessionPairingCodeEvent,
    SessionQrEvent,
    SessionStatus,
    SessionStatusData,
    SessionStatusEvent,
)
from shared.ids import new_event_id
from shared.store import messages, sessions
from shared.store.messages import MessageStatus, status_for_ack


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def apply_event(redis: Redis, event: Event) -> list[Event]:
    """Record the event's effect; return further events it caused (sessions retired by a newer one)."""
    if isinstance(event, SessionStatusEvent):
        return await _apply_status(redis, event)
    if isinstance(event, SessionQrEvent):
        await sessions.set_qr(
            redis, event.session_id, event.data.qr, event.data.expires_at.isoformat(), _ms(event.occurred_at)
        )
    elif isinstance(event, SessionPairingCodeEvent):
        await sessions.set_pairing_code(redis, event.session_id, event.data.code, _ms(event.occurred_at))
    elif isinstance(event, MessageSentEvent):
        await messages.advance_status(
            redis,
            event.session_id,
            status=MessageStatus.SENT,
            message_id=await _our_message_id(redis, event.session_id, event.data),
            wa_message_id=event.data.message_id,
        )
    elif isinstance(event, MessageAckEvent):
        status = status_for_ack(event.data.ack)
        if status is not None:
            await messages.advance_status(redis, event.session_id, status=status, wa_message_id=event.data.message_id)
    elif isinstance(event, MessageFailedEvent):
        message_id = await _our_message_id(redis, event.session_id, event.data)
        if message_id or event.data.message_id:
            await messages.advance_status(
                redis,
                event.session_id,
                status=MessageStatus.FAILED,
                message_id=message_id,
                wa_message_id=event.data.message_id,
                error=event.data.reason,
            )
    return []


async def _our_message_id(redis: Redis, session_id: str, data: MessageSentData | MessageFailedData) -> str | None:
    """Our message id: named by the worker, or found through the tenant's client_message_id."""
    return data.gateway_message_id or await messages.id_for_client_message(redis, session_id, data.client_message_id)


async def _apply_status(redis: Redis, event: SessionStatusEvent) -> list[Event]:
    session = await sessions.get_session(redis, event.session_id)
    if session is None:
        return []
    change = await sessions.apply_status(
        redis,
        session,
        event.data.status,
        reason=event.data.reason,
        occurred_at_ms=_ms(event.occurred_at),
        phone=event.data.phone,
    )
    now = datetime.now(UTC)
    return [
        SessionStatusEvent(
            id=new_event_id(),
            workspace_id=event.workspace_id,
            session_id=retired_id,
            occurred_at=now,
            data=SessionStatusData(
                status=SessionStatus.RETIRED, reason=sessions.RETIRED_REASON, phone=event.data.phone or session.phone
            ),
        )
        for retired_id in change.retired_session_ids
    ]

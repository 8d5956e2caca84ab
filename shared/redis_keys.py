"""Every Redis key name wa-gateway uses is built here, and only here.

All keys share the `wagw:` prefix. The deployment uses a non-clustered replication group, so
multi-key Lua scripts may touch keys of different sessions.
"""

from __future__ import annotations

PREFIX = "wagw"


# Tenants ---------------------------------------------------------------------------------------
def workspace(workspace_id: str) -> str:
    return f"{PREFIX}:ws:{workspace_id}"


def workspaces_index() -> str:
    return f"{PREFIX}:workspaces"


def api_key(key_hash: str) -> str:
    return f"{PREFIX}:apikey:{key_hash}"


def workspace_api_keys(workspace_id: str) -> str:
    return f"{PREFIX}:ws:{workspace_id}:apikeys"


# Sessions --------------------------------------------------------------------------------------
def session(session_id: str) -> str:
    return f"{PREFIX}:session:{session_id}"


def workspace_sessions(workspace_id: str) -> str:
    """Sorted set of the workspace's session ids, scored by creation time (ms)."""
    return f"{PREFIX}:ws:{workspace_id}:sessions"


def workspace_phone_sessions(workspace_id: str, phone: str) -> str:
    return f"{PREFIX}:ws:{workspace_id}:phone:{phone}"


def sessions_index() -> str:
    """Sorted set of every session id, scored by creation time (ms): cleanup walks it with ZRANGE."""
    return f"{PREFIX}:sessions"


# Ingest ----------------------------------------------------------------------------------------
def event_seen(event_id: str) -> str:
    return f"{PREFIX}:dedupe:{event_id}"


def throttle_bucket(workspace_id: str, event_class: str) -> str:
    return f"{PREFIX}:throttle:{workspace_id}:{event_class}"


# Webhook endpoints and deliveries --------------------------------------------------------------
def endpoint(endpoint_id: str) -> str:
    return f"{PREFIX}:endpoint:{endpoint_id}"


def workspace_endpoints(workspace_id: str) -> str:
    return f"{PREFIX}:ws:{workspace_id}:endpoints"


def delivery_attempts(delivery_id: str) -> str:
    return f"{PREFIX}:attempts:{delivery_id}"


def event_deliveries(event_id: str) -> str:
    return f"{PREFIX}:event:{event_id}:deliveries"


def workspace_dead_letters(workspace_id: str) -> str:
    return f"{PREFIX}:ws:{workspace_id}:dead"


def dead_letter(delivery_id: str) -> str:
    return f"{PREFIX}:dead:{delivery_id}"


def retry_schedule() -> str:
    return f"{PREFIX}:retry:due"


def retry_payload(delivery_id: str) -> str:
    return f"{PREFIX}:retry:payload:{delivery_id}"


def retry_inflight() -> str:
    return f"{PREFIX}:retry:inflight"


def endpoint_breaker(endpoint_id: str) -> str:
    return f"{PREFIX}:breaker:{endpoint_id}"


# Messages --------------------------------------------------------------------------------------
def message(message_id: str) -> str:
    return f"{PREFIX}:msg:{message_id}"


def client_message(session_id: str, client_message_id: str) -> str:
    return f"{PREFIX}:session:{session_id}:cmsg:{client_message_id}"


def wa_message(session_id: str, wa_message_id: str) -> str:
    """Maps WhatsApp's message id back to ours, so acks find the message record."""
    return f"{PREFIX}:session:{session_id}:wamsg:{wa_message_id}"


def media(media_id: str) -> str:
    """A media object's record (uploaded by a tenant, or received and stored by a worker)."""
    return f"{PREFIX}:media:{media_id}"


def session_messages(session_id: str) -> str:
    return f"{PREFIX}:session:{session_id}:messages"


def send_queue(session_id: str) -> str:
    """The session's queued outgoing messages (sorted set of message ids, by creation): the API bounds it, the
    worker removes each message once it was sent or failed, a tenant can read and clear it."""
    return f"{PREFIX}:session:{session_id}:sendq"


# Session workers -------------------------------------------------------------------------------
def session_lease(session_id: str) -> str:
    return f"{PREFIX}:lease:{session_id}"


def session_fence(session_id: str) -> str:
    return f"{PREFIX}:fence:{session_id}"


def session_commands(session_id: str) -> str:
    return f"{PREFIX}:cmd:{session_id}"


def session_auth(session_id: str) -> str:
    return f"{PREFIX}:auth:{session_id}"


def auth_index() -> str:
    return f"{PREFIX}:auth:index"


def unowned_sessions() -> str:
    return f"{PREFIX}:sessions:unowned"


def worker_sessions(worker_id: str) -> str:
    return f"{PREFIX}:worker:{worker_id}:sessions"


def workers() -> str:
    """Sorted set of live worker ids scored by their last heartbeat (ms)."""
    return f"{PREFIX}:workers"


def worker_info(worker_id: str) -> str:
    return f"{PREFIX}:worker:{worker_id}"


def outbox(worker_id: str) -> str:
    return f"{PREFIX}:outbox:{worker_id}"


def session_sent(session_id: str, client_message_id: str) -> str:
    """Set atomically with the `message.sent` outbox entry: the send_text command is done (session workers)."""
    return f"{PREFIX}:session:{session_id}:sent:{client_message_id}"


def session_sending(session_id: str, client_message_id: str) -> str:
    """Set before a send is handed to WhatsApp: a new owner checks WhatsApp before sending again."""
    return f"{PREFIX}:session:{session_id}:sending:{client_message_id}"


def outbox_dead(worker_id: str) -> str:
    """Outbox entries ingest refused one by one (4xx): kept for an operator, never retried blindly."""
    return f"{PREFIX}:outbox:{worker_id}:dead"


def outbox_drain_lock(worker_id: str) -> str:
    """Held by the worker draining a dead worker's outbox."""
    return f"{PREFIX}:outbox:{worker_id}:drainlock"


# Cleanup ---------------------------------------------------------------------------------------
def cleanup_lock() -> str:
    return f"{PREFIX}:cleanup:lock"


def cleanup_cursor() -> str:
    return f"{PREFIX}:cleanup:cursor"


def cleanup_outbox() -> str:
    """List of session.status events (JSON) cleanup has committed but not yet posted to ingest."""
    return f"{PREFIX}:cleanup:outbox"


def cleanup_auth_cursor() -> str:
    """SSCAN cursor over auth_index, so each run checks a bounded slice of the auth archives."""
    return f"{PREFIX}:cleanup:auth-cursor"


def cleanup_s3_token() -> str:
    """S3 ListObjectsV2 continuation token of the orphaned-archive sweep."""
    return f"{PREFIX}:cleanup:s3-token"


def cleanup_keyspace_cursor() -> str:
    """SCAN cursor of the TTL check over delivery attempt logs and dedupe marks."""
    return f"{PREFIX}:cleanup:keyspace-cursor"


# Delivery state (functions/deliver) ------------------------------------------------------------
def delivery_state(delivery_id: str) -> str:
    """Hash: highest attempt begun, last attempt finished, status, lease; collapses duplicate messages."""
    return f"{PREFIX}:dlvstate:{delivery_id}"


# Reads through the owning worker (contacts, chats, history, groups) --------------------------------------
def read_reply(request_id: str) -> str:
    """List the worker pushes one read's answer to; the API waits on it (BLPOP) a bounded time; short TTL."""
    return f"{PREFIX}:read:{request_id}:reply"


def session_contact(session_id: str, phone: str) -> str:
    """A session's cached answer to "is this number on WhatsApp" (JSON, with a TTL)."""
    return f"{PREFIX}:session:{session_id}:contact:{phone}"


def session_contact_checks(session_id: str) -> str:
    """The session's token bucket for number checks that reach WhatsApp (hash: tokens, at_ms)."""
    return f"{PREFIX}:session:{session_id}:contactrate"

"""Runtime settings, read from `WAGW_*` environment variables and validated at start."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["dev", "staging", "prod"]

# Well-known development secrets: fine on a laptop, refused anywhere else.
DEV_PRODUCER_SECRET = "whsec_ZGV2LW9ubHktcHJvZHVjZXIta2V5LWNoYW5nZS1tZQ=="
DEV_ADMIN_KEY = "wagw_admin_dev_only_change_me"


class ThrottleLimit(BaseModel):
    """A token bucket `burst` deep that refills `per_minute` per minute.

    So any 60 s window admits at most `per_minute + burst` events of the class, per workspace.
    """

    per_minute: int = Field(gt=0)
    burst: int = Field(gt=0, description="bucket depth: events admitted at once after a quiet spell")
    droppable: bool = False


def default_throttle_limits() -> dict[str, ThrottleLimit]:
    return {
        "message": ThrottleLimit(per_minute=1000, burst=200),
        "session_ready": ThrottleLimit(per_minute=50, burst=10),
        "session_qr": ThrottleLimit(per_minute=20, burst=5),
        "low_value": ThrottleLimit(per_minute=100, burst=20, droppable=True),
        "default": ThrottleLimit(per_minute=100, burst=20),
    }


def default_retry_schedule() -> list[int]:
    return [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAGW_", extra="ignore")

    env: Environment = "dev"
    service_name: str = "wa-gateway"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # ElastiCache AUTH: the secret (name or ARN) whose whole value is the token; the URL itself carries none.
    redis_auth_secret_name: str | None = None
    aws_region: str = "us-east-1"

    deliveries_queue_name: str = "wagw-deliveries"
    deliveries_dlq_name: str = "wagw-deliveries-dlq"
    deliveries_queue_url: str | None = None
    deliveries_dlq_url: str | None = None
    auth_bucket: str = "wagw-auth-archives"

    # Producer signing keys by name (several during a rotation): producers sign with every one, ingest accepts a
    # match with any; the order does not matter (shared/producer.py, docs/deploy.md "Rotating keys").
    producer_keys: dict[str, SecretStr] = Field(default_factory=lambda: {"dev": SecretStr(DEV_PRODUCER_SECRET)})
    producer_keys_secret_name: str | None = None
    trusted_producers: list[str] = Field(default_factory=list)
    trusted_cidrs: list[str] = Field(default_factory=list)
    admin_api_key: SecretStr = SecretStr(DEV_ADMIN_KEY)
    admin_api_key_secret_name: str | None = None

    ingest_url: str = "http://127.0.0.1:8081/v1/events"
    # Local-only: webhook URLs may use http and private or loopback addresses (the receivers of `make run` and the
    # tests). Honoured only with env=dev; the CDK app never sets it, so a dev stack in AWS checks URLs like prod.
    allow_local_webhooks: bool = False
    max_body_bytes: int = 256 * 1024
    max_batch_events: int = 100
    signature_tolerance_seconds: int = 300
    dedupe_ttl_seconds: int = 24 * 3600
    # How long an accepted event's mark stays 'pending' if ingest never confirms it (it died mid-batch); longer
    # than the ingest function's timeout, so a batch still running is never accepted twice.
    dedupe_pending_seconds: int = Field(default=120, gt=0)
    throttle_limits: dict[str, ThrottleLimit] = Field(default_factory=default_throttle_limits)

    delivery_timeout_seconds: float = 15.0
    retry_schedule_seconds: list[int] = Field(default_factory=default_retry_schedule)
    retry_jitter: float = 0.2
    attempt_log_ttl_seconds: int = 7 * 24 * 3600
    # Delivery (functions/deliver, functions/retry_scheduler) ----------------------------------------
    delivery_max_connections: int = Field(default=100, gt=0)  # httpx pool per deliver process
    retry_after_max_seconds: int = Field(default=24 * 3600, ge=0)  # a longer Retry-After is capped here
    breaker_failure_threshold: int = Field(default=20, gt=0)  # consecutive failures that open the breaker
    breaker_cooldown_seconds: float = Field(default=60.0, gt=0)  # open for this long, then one probe
    retry_claim_lease_seconds: int = Field(default=300, gt=0)  # > the scheduler's function timeout
    retry_scheduler_batch: int = Field(default=500, gt=0, le=5000)
    dead_letter_ttl_seconds: int = Field(default=14 * 24 * 3600, gt=0)  # = the DLQ's retention

    # Tenant API (functions/api)
    # Anti-ban pacing: a session's worker sends at most one message per `send_gap_ms` plus a random 0..jitter, so
    # bursts wait in the session's queue instead of being refused; the API answers 429 only past `send_queue_max`.
    # Each is a default a workspace can override (PATCH /v1/workspace).
    send_gap_ms: int = Field(default=1000, ge=0, le=600_000)
    send_jitter_ms: int = Field(default=1000, ge=0, le=600_000)
    send_queue_max: int = Field(default=200, ge=1, le=100_000)
    typing_before_send: bool = False
    api_max_body_bytes: int = Field(default=128 * 1024, gt=0)
    api_page_size_max: int = Field(default=100, gt=0)
    api_key_rotation_grace_seconds: int = Field(default=3600, ge=0)
    api_endpoint_secret_overlap_seconds: int = Field(default=24 * 3600, ge=0)
    api_test_ping_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long one API process trusts an API key it has looked up (0: ask Redis on every request); a key
    # revoked elsewhere stops working within this many seconds, at once in the process that revoked it.
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    # Reads through the owning worker (GET .../contacts, chats, messages, groups): how long the API waits for the
    # worker's answer before a 504 (inside API Gateway's 29 s), and how long the answer is kept for it.
    api_read_timeout_seconds: float = Field(default=8.0, gt=0, le=25)
    # "Is this number on WhatsApp": bulk checks get accounts banned, so those that reach WhatsApp are limited per
    # session (a token bucket: `per_minute`, at most `burst` at once); answers are cached per session.
    contact_checks_per_minute: float = Field(default=6.0, gt=0)
    contact_checks_burst: int = Field(default=5, ge=1)
    contact_cache_seconds: int = Field(default=24 * 3600, ge=0)  # a number on WhatsApp
    contact_cache_missing_seconds: int = Field(default=600, ge=0)  # not on WhatsApp (or WhatsApp did not answer)

    # Cleanup (functions/cleanup, `wagw cleanup`).
    qr_timeout_seconds: int = Field(default=1800, gt=0)
    disconnected_delete_after_seconds: int = Field(default=24 * 3600, gt=0)
    tombstone_retention_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    cleanup_batch_size: int = Field(default=1000, gt=0, le=10000)
    cleanup_max_sessions_per_run: int = Field(default=200_000, gt=0)
    cleanup_lock_seconds: int = Field(default=600, gt=0)
    cleanup_s3_enabled: bool = True
    cleanup_s3_grace_seconds: int = Field(default=3600, ge=0)

    # Session workers (session_workers/, `python -m session_workers`) ---------------------------------
    worker_id: str | None = None  # None: "<hostname>-<random>", unique per start
    worker_capacity: int = Field(default=50, ge=1)
    chromium_path: str = "/usr/lib/chromium/chromium-headless-shell"
    chromium_args: list[str] = Field(default_factory=lambda: ["--disable-quic", "--disable-dev-shm-usage"])
    auth_strategy: Literal["profile", "context"] = "profile"
    # Sessions a worker opens (or restores) at once. None: 6 for `profile` (each start launches a browser), and
    # 4 per core for `context` (contexts in one browser are cheap to start; restores keep Chromium's threads busy
    # rather than waking them per task, which measured fewer CPU-seconds per restore at 8-12 than at 6 on 2 cores).
    worker_start_concurrency: int | None = Field(default=None, ge=1)
    # context strategy: the WebCrypto wrapper that lets non-extractable keys be archived (docs/session-workers.md)
    context_exportable_keys: bool = True
    # context strategy: restore a silent worker's sessions into fresh contexts while their leases run out
    context_prepare_takeover: bool = True
    auth_kms_key_id: str | None = None  # KMS key (id, ARN or alias) that encrypts auth archives (envelope)
    auth_backup_interval_seconds: float = Field(default=60.0, gt=0)
    auth_inline_max_bytes: int = Field(default=512 * 1024, ge=0)  # larger archives go to S3 (auth_bucket)
    profiles_dir: str | None = None  # where `profile` keeps live profiles; None: a temporary directory
    lease_ttl_ms: int = Field(default=6000, ge=200)
    heartbeat_interval_ms: int = Field(default=1500, ge=50)
    lease_safety_margin_ms: int = Field(default=1500, ge=0)  # stop driving this long before the lease could lapse
    claim_interval_ms: int = Field(default=1000, ge=50)
    qr_refresh_limit: int = Field(default=5, ge=1)  # unscanned QR codes before `failed` / `qr_timeout`
    qr_ttl_seconds: int = Field(default=20, ge=1)
    crash_loop_limit: int = Field(default=3, ge=1)  # crashes within the window before `failed` / `crash_loop`
    crash_loop_window_seconds: float = Field(default=300.0, gt=0)
    send_ready_timeout_seconds: float = Field(default=60.0, gt=0)
    # A WhatsApp Web update can break wa-js: a page whose WPP is not ready by then is `failed` (wa_js_incompatible).
    wa_js_ready_timeout_seconds: float = Field(default=60.0, gt=0)
    # conn/functions/linkDeviceCodeLifecycle.ts: LINK_CODE_TTL_MS (3.25 min) before wa-js refreshes a code.
    pairing_code_ttl_seconds: int = Field(default=195, ge=1)
    # Largest media per message type (WhatsApp's limits): over it the API answers 422, the worker fails the send.
    media_max_bytes: dict[str, int] = Field(
        default={
            "image": 16 * 1024 * 1024,
            "video": 16 * 1024 * 1024,
            "audio": 16 * 1024 * 1024,
            "voice": 16 * 1024 * 1024,
            "sticker": 1024 * 1024,
            "document": 100 * 1024 * 1024,
        }
    )
    media_bucket: str = "wagw-media"
    media_retention_days: int = Field(default=30, ge=1, description="media objects expire (bucket lifecycle)")
    media_url_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600, description="presigned URLs last")
    media_fetch_timeout_seconds: float = Field(default=30.0, gt=0)
    # A restored page's recent messages are reported again (ingest drops the ones already delivered): from this long
    # before its archive was saved, in at most this many chats and messages per chat.
    reconcile_lookback_seconds: int = Field(default=120, ge=0)
    reconcile_max_chats: int = Field(default=50, ge=1)
    reconcile_per_chat: int = Field(default=50, ge=1)
    health_port: int = 8090
    whatsapp_url: str = "https://web.whatsapp.com/"
    wa_js_path: str = "node_modules/@wppconnect/wa-js/dist/wppconnect-wa.js"
    wa_js_inject: Literal["auto", "always", "never"] = "auto"  # auto: only on *.whatsapp.com
    user_agent: str = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
    )
    outbox_batch_size: int = Field(default=100, ge=1, le=100)
    outbox_backoff_max_seconds: float = Field(default=60.0, gt=0)
    # The longest the outbox poster, woken after running dry, waits for more events to join the batch; it waits
    # less when the recent flow is fast and not at all when it is slow (session_workers/outbox.py LINGER_SECONDS
    # says why; 0 posts at once).
    outbox_linger_seconds: float = Field(default=0.2, ge=0, le=1)
    stop_timeout_seconds: float = Field(default=25.0, gt=0)  # ECS stopTimeout is 30 s by default
    metrics_interval_seconds: float = Field(default=60.0, gt=0)

    @field_validator("trusted_cidrs")
    @classmethod
    def _cidrs_parse(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @model_validator(mode="after")
    def _no_default_secrets_outside_dev(self) -> Settings:
        if self.env == "dev":
            return self
        if self.admin_api_key_secret_name is None and self.admin_api_key.get_secret_value() == DEV_ADMIN_KEY:
            raise ValueError(f"WAGW_ADMIN_API_KEY is the development default; set a real one for {self.env}")
        if self.producer_keys_secret_name is None and any(
            key.get_secret_value() == DEV_PRODUCER_SECRET for key in self.producer_keys.values()
        ):
            raise ValueError(f"WAGW_PRODUCER_KEYS holds the development default; set real keys for {self.env}")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()

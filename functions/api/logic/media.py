"""Media: presigned uploads for sending by reference, fresh download URLs, and the checks a send by reference
needs before it is queued (the object is there, and within the message type's limit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from functions.api import errors
from shared.delivery import urlsafety
from shared.ids import new_id
from shared.outgoing import OutgoingContent
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.store import media
from shared.store.media import MediaRecord

UPLOAD_URL_SECONDS = 900


def kind_of_mimetype(mimetype: str) -> str:
    """The message type whose limit applies to an upload of this type (documents can be anything)."""
    major = mimetype.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


def limit_for(kind: str) -> int:
    return get_settings().media_max_bytes[kind]


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


async def create_upload(
    workspace_id: str, *, mimetype: str, size: int, filename: str | None
) -> tuple[MediaRecord, str, datetime]:
    """A media id and a PUT URL for exactly `size` bytes of `mimetype`; refused over the largest limit it could
    be sent under."""
    kind = kind_of_mimetype(mimetype)
    largest = max(limit_for(kind), limit_for("document"))
    if size > largest:
        raise errors.InvalidInput(f"{size} bytes is over the {_mib(largest)} limit for {mimetype}", field="size")
    media_id = new_id("med")
    record = MediaRecord(
        id=media_id,
        workspace_id=workspace_id,
        source="upload",
        mimetype=mimetype,
        size=size,
        filename=filename,
        s3_key=media.object_key(workspace_id, media_id),
    )
    await media.save(get_redis(), record)
    expires = datetime.now(UTC) + timedelta(seconds=UPLOAD_URL_SECONDS)
    return record, media.presigned_put(record, UPLOAD_URL_SECONDS), expires


async def get_media(workspace_id: str, media_id: str) -> tuple[MediaRecord, str, datetime]:
    """The media's record and a fresh download URL; another workspace's id is not found."""
    record = await media.get(get_redis(), media_id)
    if record is None or record.workspace_id != workspace_id:
        raise errors.NotFound("media", media_id)
    seconds = get_settings().media_url_seconds
    return record, media.presigned_get(record, seconds), datetime.now(UTC) + timedelta(seconds=seconds)


async def check_before_queueing(workspace_id: str, content: OutgoingContent) -> None:
    """Media by URL: the URL must be one the worker may fetch (the webhook rules). By media id: the upload must be
    this workspace's, complete, and within the type's limit."""
    if content.media is None:
        return
    if content.media.url is not None:
        try:
            urlsafety.check_syntax(content.media.url, strict=urlsafety.is_strict())
        except urlsafety.UnsafeUrlError as exc:
            raise errors.InvalidInput(str(exc).replace("webhook URL", "media URL"), field="media.url") from exc
        return
    media_id = content.media.media_id or ""
    record = await media.get(get_redis(), media_id)
    if record is None or record.workspace_id != workspace_id:
        raise errors.InvalidInput(f"media {media_id!r} not found", field="media.media_id")
    size = await media.stored_size(record)
    if size is None:
        raise errors.InvalidInput(
            f"media {record.id!r} has not been uploaded yet (PUT it to its upload_url first)", field="media.media_id"
        )
    limit = limit_for(content.type)
    if size > limit:
        raise errors.InvalidInput(
            f"media {record.id!r} is {size} bytes, over the {_mib(limit)} limit for a {content.type} message",
            field="media.media_id",
        )

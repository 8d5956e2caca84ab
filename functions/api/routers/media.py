"""Media: upload for sending by reference (scope send), a fresh download URL (scope read)."""

from __future__ import annotations

from fastapi import APIRouter, status

from functions.api.auth import Principal, ReadScope, SendScope
from functions.api.logic import media
from functions.api.models import MediaOut, MediaUploadCreate, MediaUploadOut
from functions.api.problems import problems

router = APIRouter(prefix="/v1/media", tags=["media"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(403, 422))
async def create_upload(body: MediaUploadCreate, principal: Principal = SendScope) -> MediaUploadOut:
    """Reserve a media id and get a presigned PUT URL for exactly `size` bytes of `mimetype` (send the
    `upload_headers` with the PUT); then send a message with `media: {"media_id": ...}`."""
    record, url, expires = await media.create_upload(
        principal.workspace_id, mimetype=body.mimetype, size=body.size, filename=body.filename
    )
    return MediaUploadOut(
        id=record.id,
        upload_url=url,
        upload_headers={"Content-Type": record.mimetype, "Content-Length": str(record.size)},
        expires_at=expires,
    )


@router.get("/{media_id}", responses=problems(403, 404))
async def get_media(media_id: str, principal: Principal = ReadScope) -> MediaOut:
    """The media's details and a fresh presigned download URL."""
    record, url, expires = await media.get_media(principal.workspace_id, media_id)
    return MediaOut.of(record, url, expires)

"""The ingest benchmark's baseline: an endpoint that only parses the JSON and sends the same SQS batches."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI, Request

from shared import aws

app = FastAPI()


def _send(queue_url: str, events: list[dict[str, Any]]) -> None:
    entries = [{"Id": str(i), "MessageBody": json.dumps({"event": e})} for i, e in enumerate(events)]
    aws.sqs().send_message_batch(QueueUrl=queue_url, Entries=entries)


@app.post("/v1/events", status_code=202)
async def post_events(request: Request) -> dict[str, int]:
    events = json.loads(await request.body())["events"]
    queue_url = await asyncio.to_thread(aws.deliveries_queue_url)
    chunks = [events[i : i + 10] for i in range(0, len(events), 10)]
    await asyncio.gather(*(asyncio.to_thread(_send, queue_url, chunk) for chunk in chunks))
    return {"accepted": len(events)}

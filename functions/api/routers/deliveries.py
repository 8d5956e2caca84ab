"""Deliveries: attempts, dead letters and replays (wired to shared.delivery.replay)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])

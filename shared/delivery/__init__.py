"""Webhook delivery pieces shared by ingest (enqueue), deliver, the retry scheduler and the API (replay)."""

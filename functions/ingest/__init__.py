"""Ingest: verify producers' signed event batches, dedupe, throttle, record state, fan out to SQS."""

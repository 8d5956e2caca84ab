"""The one place Logger, Metrics and Tracer are configured; every entry point imports them from here."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "wa-gateway")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "WaGateway")

# Outside Lambda there is no X-Ray daemon; tracing stays off unless asked for.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true" if "AWS_LAMBDA_FUNCTION_NAME" not in os.environ else "false")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)

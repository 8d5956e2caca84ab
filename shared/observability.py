"""The one place Logger, Metrics and Tracer are configured; every entry point imports them from here."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "wa-gateway")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "WaGateway")

# Outside Lambda there is no X-Ray daemon; tracing stays off unless asked for.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true" if "AWS_LAMBDA_FUNCTION_NAME" not in os.environ else "false")


class _Metrics(Metrics):
    """Powertools Metrics that record nothing when metrics are disabled.

    Powertools skips the flush when disabled but still buffers, and prints its buffer whenever it
    reaches 100 entries; long-lived local processes (uvicorn, pollers) would print EMF forever.
    """

    def add_metric(self, *args: Any, **kwargs: Any) -> None:
        if not is_metrics_disabled():
            super().add_metric(*args, **kwargs)


logger = Logger(service=SERVICE)
metrics = _Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)

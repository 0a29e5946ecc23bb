"""Structured logs, CloudWatch metrics (embedded metric format) and optional X-Ray tracing.

The logger and the metrics exist from import on, so that even a failure to read the settings
is logged as a structured line; app.py reads the settings once and hands them to `configure`,
which names the service and the namespace and turns tracing on. Powertools reads
POWERTOOLS_LOG_LEVEL itself. The Tracer, which imports the X-Ray SDK and botocore, is only
imported when tracing is on.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from serving.config import (
    DEFAULT_METRICS_NAMESPACE,
    DEFAULT_SERVICE_NAME,
    Settings,
    metrics_namespace_for,
    service_name_for,
)

Handler = Callable[[Any, Any], dict[str, Any]]

logger = Logger(service=DEFAULT_SERVICE_NAME)
metrics = Metrics(namespace=DEFAULT_METRICS_NAMESPACE, service=DEFAULT_SERVICE_NAME)
# Mangum's own per-invocation logs would repeat what the structured logs already say.
logging.getLogger("mangum").setLevel(logging.WARNING)
# Status, docs and metadata requests have no application metrics by design; Powertools would
# warn about each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

# Set by configure when the settings turn tracing on.
tracer: Any = None


def configure(settings: Settings, model_name: str) -> None:
    """Apply the function's settings: service name and metrics namespace (as set, else named after
    the model `model_name`) and, if on, tracing."""
    global tracer
    service = settings.service_name or service_name_for(model_name, settings.role)
    logger.append_keys(service=service)
    metrics.namespace = settings.metrics_namespace or metrics_namespace_for(model_name)
    metrics.service = service
    if settings.tracing:
        from aws_lambda_powertools import Tracer

        tracer = Tracer(service=service)
    else:
        tracer = None


def instrument(handler: Handler) -> Handler:
    """The Lambda handler with Lambda context in every log line, the request id as correlation
    id, metrics flushed after each invocation (with a ColdStart metric) and, if on, tracing."""
    instrumented: Handler = logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
        handler
    )
    instrumented = metrics.log_metrics(capture_cold_start_metric=True)(instrumented)
    if tracer is not None:
        instrumented = tracer.capture_lambda_handler(instrumented)
    return instrumented


@contextmanager
def traced(name: str) -> Iterator[None]:
    """An X-Ray subsegment around a block when tracing is on; nothing otherwise."""
    if tracer is None:
        yield
        return
    with tracer.provider.in_subsegment(name):
        yield


def record_predictions(rows: int, by_class: dict[str, int], model_ms: float) -> None:
    """RowsPerRequest, ModelLatency and Predictions_<class>, all in the invocation's one EMF document
    (a `class` dimension would cost a document, and its serialisation, per class per request)."""
    metrics.add_metric(name="RowsPerRequest", unit=MetricUnit.Count, value=rows)
    metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=model_ms)
    for class_name, count in sorted(by_class.items()):
        metrics.add_metric(name=f"Predictions_{class_name}", unit=MetricUnit.Count, value=count)


def record_rejection(status: int, message: str) -> None:
    metrics.add_metric(name="ValidationErrors", unit=MetricUnit.Count, value=1)
    logger.info("request rejected", extra={"status": status, "error": message})

"""Structured logging shared by every module of the function.

Powertools reads the log level from POWERTOOLS_LOG_LEVEL; the service name comes from
POWERTOOLS_SERVICE_NAME with a default for runs outside Lambda (see template.yaml).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from serving.config import load_settings

logger = Logger(service=load_settings().service_name)

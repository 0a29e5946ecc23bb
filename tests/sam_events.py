"""Sample events of every AWS service, as `sam local generate-event` makes them (SAM CLI's own templates)."""

from __future__ import annotations

import json
from typing import Any

from samcli.lib.generated_sample_events.events import Events

SAM_SAMPLES = Events()
# SAM CLI's HTTP samples in the two payload formats the function serves.
SAM_HTTP_SAMPLES = {("apigateway", "aws-proxy"), ("apigateway", "http-api-proxy")}


def sam_sample(service: str, event_type: str) -> Any:
    """`sam local generate-event <service> <event_type>` with its defaults, as the CLI makes it."""
    tags = SAM_SAMPLES.event_mapping[service][event_type]["tags"]
    defaults = {name: spec["default"] for name, spec in tags.items() if "default" in spec}
    return json.loads(SAM_SAMPLES.generate_event(service, event_type, defaults))


# Every other sample: events of other services (and a load balancer's and an authorizer's) the function refuses.
NON_HTTP_SAMPLES = sorted(
    (service, event_type)
    for service, types in SAM_SAMPLES.event_mapping.items()
    for event_type in types
    if (service, event_type) not in SAM_HTTP_SAMPLES
)

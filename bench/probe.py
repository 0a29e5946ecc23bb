"""One cold start and many warm invocations of a built package, measured from inside.

Run by bench/measure.py as `python -I -S -B bench/probe.py PACKAGE EVENT WARM FD`: the package
alone on the import path, no bytecode writes. It writes "first <status>" to file descriptor
FD as soon as the first response exists (the parent times spawn to that line), then a JSON
line with the warm invocation times and the peak RSS (VmHWM). Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

LOCAL_TOOLS = Path(__file__).resolve().parent.parent / "local"


def peak_rss_since_exec_kib() -> int:
    """VmHWM: unlike getrusage's ru_maxrss, it starts afresh at exec, so the parent's memory
    (counted in the forked child before exec) does not leak into the figure."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    package, event_file, warm, fd = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    event = json.loads(event_file.read_text())
    sys.path.insert(0, str(LOCAL_TOOLS))
    import lambda_runtime

    handler = lambda_runtime.load_handler(package)
    first = handler(event, lambda_runtime.LambdaContext())
    with os.fdopen(fd, "w", buffering=1) as report:
        report.write(f"first {first['statusCode']} {first['body']}\n")
        warm_ns = []
        for _ in range(warm):
            context = lambda_runtime.LambdaContext()
            started = time.perf_counter_ns()
            handler(event, context)
            warm_ns.append(time.perf_counter_ns() - started)
        peak_rss_kib = peak_rss_since_exec_kib()
        report.write(json.dumps({"warm_ns": warm_ns, "peak_rss_kib": peak_rss_kib}) + "\n")


if __name__ == "__main__":
    main()

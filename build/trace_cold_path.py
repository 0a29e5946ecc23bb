"""Run inside the built package, isolated (`python -I -S -B`): import the handler, answer
each event, and record the status codes and every module of the package that was imported.

Standard library only; its output file is read by build/bytecode.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LOCAL_TOOLS = Path(__file__).resolve().parent.parent / "local"


def main() -> None:
    package, output, *events = (Path(arg) for arg in sys.argv[1:])
    sys.path.insert(0, str(LOCAL_TOOLS))
    import lambda_runtime

    handler = lambda_runtime.load_handler(package.resolve())
    statuses = {
        event.name: handler(json.loads(event.read_text()), lambda_runtime.LambdaContext())["statusCode"]
        for event in events
    }
    root = str(package.resolve())
    files = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    modules = sorted(file for file in files if isinstance(file, str) and file.startswith(root))
    output.write_text(json.dumps({"statuses": statuses, "modules": modules}))


if __name__ == "__main__":
    main()

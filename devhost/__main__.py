"""``python -m devhost``: the local Functions host, for machines without Core Tools."""

import argparse

from devhost.server import serve


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Serve an Azure Functions (Python v2) app locally, like 'func start'.",
    )
    parser.add_argument(
        "--app-dir",
        default=".",
        help="function app directory; the worker imports PYTHON_SCRIPT_FILE_NAME "
        "(default function_app.py) from it",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=7071, help="port; 0 picks a free one")
    parser.add_argument("--settings", default="local.settings.json", help="app settings file")
    parser.add_argument("--host-json", default="host.json", help="host configuration file")
    args = parser.parse_args()
    return serve(args.app_dir, args.host, args.port, args.settings, args.host_json)


raise SystemExit(main())

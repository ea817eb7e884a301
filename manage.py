"""Stratus operations CLI: serve, migrate, create-superuser, init-settings, unthrottle, smoke,
release, drill.

Every command but ``smoke`` reads ``local.settings.json`` ``Values`` first (without overriding
variables already set), as ``func start`` does, so local runs and CLI commands see the same
settings. ``smoke`` tests a running deployment, often a remote one: it reads the file only when
the deployment is on this machine (a loopback address), and otherwise only the environment
(see scripts/smoke_test.py), so local credentials never go to a remote instance.
Exit codes: 0 success, 1 the operation failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
LOCAL_SETTINGS = ROOT / "local.settings.json"
SAMPLE_SETTINGS = ROOT / "local.settings.sample.json"
GENERATED_SECRETS = ("SECRET_KEY", "JWT_SECRET_KEY", "FIRST_SUPERUSER_PASSWORD")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _settings_problem(settings_file: Path) -> str | None:
    """Load local.settings.json and validate the settings; what is wrong, if anything."""
    from devhost.errors import DevhostError
    from devhost.settings import apply_local_settings
    from shared.config import get_settings

    try:
        apply_local_settings(settings_file)
    except DevhostError as exc:
        return str(exc)
    errors = get_settings().errors
    if errors:
        return "Configuration errors:\n  " + "\n  ".join(errors)
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    from devhost.server import serve

    return serve(
        app_dir=ROOT,
        host=args.host,
        port=args.port,
        settings_file=args.settings,
        host_json=ROOT / "host.json",
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    problem = _settings_problem(args.settings)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    from alembic import command
    from alembic.config import Config

    from shared.readiness import expected_heads

    try:
        command.upgrade(Config(str(ROOT / "alembic.ini")), "head")
    except Exception as exc:
        print(f"Migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Database at {', '.join(sorted(expected_heads()))} (head)")
    return EXIT_OK


def cmd_create_superuser(args: argparse.Namespace) -> int:
    problem = _settings_problem(args.settings)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    from pydantic import ValidationError

    from shared import crud, schemas
    from shared.config import get_settings
    from shared.db import session_scope

    settings = get_settings()
    if not settings.first_superuser or not settings.first_superuser_password:
        print("FIRST_SUPERUSER and FIRST_SUPERUSER_PASSWORD must be set", file=sys.stderr)
        return EXIT_USAGE
    try:
        wanted = schemas.UserCreate(
            email=settings.first_superuser,
            password=settings.first_superuser_password,
            is_superuser=True,
        )
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
        print(f"FIRST_SUPERUSER settings are invalid ({fields})", file=sys.stderr)
        return EXIT_USAGE
    try:
        with session_scope() as session:
            if crud.get_user_by_email(session, wanted.email) is not None:
                print(f"Superuser {wanted.email} already exists")
                return EXIT_OK
            crud.create_user(
                session, email=wanted.email, password=wanted.password, is_superuser=True
            )
    except crud.DuplicateEmail:
        print(f"Superuser {wanted.email} already exists")
        return EXIT_OK
    except Exception as exc:
        print(f"Could not create the superuser: {type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Created superuser {wanted.email}")
    return EXIT_OK


def cmd_init_settings(args: argparse.Namespace) -> int:
    """Write local.settings.json from the sample, with fresh development secrets."""
    target: Path = args.settings
    if target.exists():
        print(f"{target} already exists; left unchanged")
        return EXIT_OK
    document = json.loads(SAMPLE_SETTINGS.read_text())
    values = document["Values"]
    for name in GENERATED_SECRETS:
        if not values.get(name):
            values[name] = secrets.token_urlsafe(32)
    # Owner-only from the first byte: the file holds the secrets just generated.
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(json.dumps(document, indent=2) + "\n")
    print(
        f"Wrote {target} with generated secrets; the first superuser's password "
        "is FIRST_SUPERUSER_PASSWORD there"
    )
    return EXIT_OK


def _is_loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_unthrottle(args: argparse.Namespace) -> int:
    problem = _settings_problem(args.settings)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    from shared import crud, schemas, throttle
    from shared.db import session_scope

    address = schemas.normalize_email(args.email)
    with session_scope() as session:
        user = crud.get_user_by_email(session, address)
    if user is None:
        print(f"No account has the address {address}", file=sys.stderr)
        return EXIT_FAILED
    if not throttle.release(throttle.account(user.id, user.email)):
        print(
            "Redis is not configured or not reachable: each instance counts failed sign-ins "
            "in its own process; they end with the delay",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"Sign-in delay of {user.email} ended on every instance")
    return EXIT_OK


def cmd_smoke(args: argparse.Namespace) -> int:
    from devhost.errors import DevhostError
    from devhost.settings import apply_local_settings
    from scripts.smoke_test import run

    if _is_loopback(args.base_url):  # the local app: its superuser and CORS origins
        try:
            apply_local_settings(args.settings)
        except DevhostError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
    return run(
        args.base_url,
        expect_version=args.expect_version,
        origin=args.origin,
        attempts=args.attempts,
        wait=args.wait,
        timeout=args.timeout,
    )


def cmd_release(args: argparse.Namespace) -> int:
    from scripts.release import run

    return run(args)


def cmd_drill(args: argparse.Namespace) -> int:
    from drills.release_drill import run

    return run(args.report, short=args.short, wait_seconds=args.wait_seconds, out=sys.stdout)


def cmd_drill_outage(args: argparse.Namespace) -> int:
    from drills.outage_drill import run

    return run(args.report, short=args.short, out=sys.stdout)


def cmd_drill_scale(args: argparse.Namespace) -> int:
    from drills.scale_drill import run

    return run(args.report, short=args.short, out=sys.stdout)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="manage.py", description=__doc__.splitlines()[0])
    root.add_argument(
        "--settings",
        type=Path,
        default=LOCAL_SETTINGS,
        help="the local settings file (default: local.settings.json beside manage.py)",
    )
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the app on the local Functions host (devhost)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="upgrade the database to the Alembic head")
    migrate.set_defaults(handler=cmd_migrate)

    superuser = commands.add_parser(
        "create-superuser", help="create FIRST_SUPERUSER if it does not exist (idempotent)"
    )
    superuser.set_defaults(handler=cmd_create_superuser)

    init = commands.add_parser(
        "init-settings", help="create local.settings.json from the sample with fresh secrets"
    )
    init.set_defaults(handler=cmd_init_settings)

    unthrottle = commands.add_parser(
        "unthrottle", help="end an account's sign-in delay on every instance (via Redis)"
    )
    unthrottle.add_argument("email", help="the account's address")
    unthrottle.set_defaults(handler=cmd_unthrottle)

    from scripts.smoke_test import add_arguments

    smoke = commands.add_parser(
        "smoke", help="smoke-test a running deployment (probes, CORS, sign-in, items, cache)"
    )
    add_arguments(smoke)
    smoke.set_defaults(handler=cmd_smoke)

    from scripts.release import add_arguments as add_release_arguments

    release = commands.add_parser(
        "release", help="the release program: package, deploy, recover, rollback (Azure)"
    )
    add_release_arguments(release)
    release.set_defaults(handler=cmd_release)

    drill = commands.add_parser("drill", help="run a drill against local stand-ins")
    drills = drill.add_subparsers(dest="drill", required=True)
    release_drill = drills.add_parser(
        "release", help="the slot-swap drill: good release, bad release, manual rollback"
    )
    release_drill.add_argument("--report", type=Path, required=True, help="where to write JSON")
    release_drill.add_argument(
        "--short", action="store_true", help="brief settling under load (the test suite's run)"
    )
    release_drill.add_argument(
        "--wait-seconds",
        type=float,
        default=None,
        help="the release's wait between a swap and its verification (Azure's is 30)",
    )
    release_drill.set_defaults(handler=cmd_drill)
    outage_drill = drills.add_parser(
        "outage",
        help="the database outage drill: PostgreSQL frozen, refusing, back, under load",
    )
    outage_drill.add_argument("--report", type=Path, required=True, help="where to write JSON")
    outage_drill.add_argument(
        "--short", action="store_true", help="an 8 s freeze and 4 s refusal (the test suite's run)"
    )
    outage_drill.set_defaults(handler=cmd_drill_outage)
    scale_drill = drills.add_parser(
        "scale",
        help="the scale-out drill: 3 instances, HAProxy, PgBouncer, one Redis; an instance and "
        "Redis lost under load",
    )
    scale_drill.add_argument("--report", type=Path, required=True, help="where to write JSON")
    scale_drill.add_argument(
        "--short", action="store_true", help="brief phases (the test suite's run)"
    )
    scale_drill.set_defaults(handler=cmd_drill_scale)
    return root


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

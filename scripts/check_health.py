#!/usr/bin/env python3
"""Poll a deployed app's ``/healthz`` until it answers 200, optionally with an expected version.

The release program (scripts/release.py) uses it after a code deploy, after a slot swap and after
a rollback swap: the platform answers with the old code, a 503 or nothing at all for a while, so
a single request proves nothing and an unbounded wait hides a broken release. Every attempt is
logged to stderr; the exit status is 0 once the check passes and 1 when the attempts run out.

``--print-version`` writes the version reported by the passing response to stdout: what an
operator checks on each slot by hand. Standard library only: it runs on any runner without
installing the app.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

USER_AGENT = "stratus-release-check"
MAX_BODY_BYTES = 64 * 1024


def probe(base_url: str, timeout: float) -> tuple[int | None, str | None, str]:
    """One GET of ``<base_url>/healthz``: (status or None, reported version or None, detail)."""
    url = base_url.rstrip("/") + "/healthz"
    request = urllib.request.Request(  # noqa: S310 - the URL is an operator-supplied https:// host
        url, headers={"User-Agent": USER_AGENT, "Cache-Control": "no-cache"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
            body = response.read(MAX_BODY_BYTES)
    except urllib.error.HTTPError as exc:
        return exc.code, None, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, None, f"no answer ({reason})"
    try:
        payload = json.loads(body)
    except ValueError:
        return status, None, f"HTTP {status}, body is not JSON"
    version = payload.get("version") if isinstance(payload, dict) else None
    if version is not None and not isinstance(version, str):
        version = str(version)
    return status, version, f"HTTP {status}, version {version!r}"


def wait_for_health(
    base_url: str,
    *,
    expect_version: str | None,
    attempts: int,
    interval: float,
    timeout: float,
) -> str | None:
    """The reported version once the check passes, or None when every attempt failed."""
    for attempt in range(1, attempts + 1):
        status, version, detail = probe(base_url, timeout)
        passed = status == 200 and (expect_version is None or version == expect_version)
        print(f"[{attempt}/{attempts}] {base_url}/healthz: {detail}", file=sys.stderr)
        if passed:
            return version or ""
        if attempt < attempts:
            time.sleep(interval)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("base_url", help="e.g. https://func-stratus-abc.azurewebsites.net")
    parser.add_argument("--expect-version", default=None, help="pass only when /healthz reports it")
    parser.add_argument("--attempts", type=int, default=30)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between attempts")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--print-version", action="store_true", help="print the version on success")
    args = parser.parse_args(argv)
    if args.attempts < 1:
        parser.error("--attempts must be at least 1")
    expected = args.expect_version or None
    version = wait_for_health(
        args.base_url,
        expect_version=expected,
        attempts=args.attempts,
        interval=args.interval,
        timeout=args.timeout,
    )
    if version is None:
        wanted = f"200 with version {expected!r}" if expected else "200"
        print(f"{args.base_url}/healthz never answered {wanted}", file=sys.stderr)
        return 1
    if args.print_version:
        print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())

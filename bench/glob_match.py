"""Pattern invalidation in memory mode over 10,000 keys: worst-case globs, before and after.

The keys are the app's own shapes: ``user:<uuid>``, ``item:<uuid>`` and
``items:<uuid>:<generation>:0:100``. ``after`` is ``Cache.invalidate`` as it is (the linear
matcher of ``shared.glob``, on a snapshot outside the cache lock). ``before`` is what the cache
did until issue 9: each ``*`` compiled to ``.*`` in one regex, ``fullmatch`` on every key under
the lock. Backtracking makes that exponential in the number of stars, so ``before`` runs in a
child process on the first ``--sample`` keys, for at most ``--budget`` seconds, and is scaled up
to 10,000 keys; "over" means the sample did not finish within the budget.

    .venv/bin/python -m bench.glob_match [--sample 20] [--budget 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid

from shared.cache import Cache
from tests.support.redis_server import cache_settings

KEYS = 10_000
PATTERNS = [
    "*?*?*?*?*?*?*?*?*?Z",
    "*-*-*-*-*-*-*-*-*-*:0:1000",
    "*a" * 16 + "b",
    "*" + "?" * 40 + "*Z",
    "[a-z]*[0-9]*" * 8,
    "user:*",
]

# The matcher before issue 9, restated: '*' as '.*', '?' as '.', the rest literal or a class.
_BEFORE = """
import re, sys, time
pattern, keys = sys.argv[1], sys.argv[2:]
parts, i = [], 0
while i < len(pattern):
    c = pattern[i]
    if c == "[":
        end = pattern.index("]", i)
        parts.append(pattern[i:end + 1]); i = end + 1; continue
    parts.append(".*" if c == "*" else "." if c == "?" else re.escape(c)); i += 1
regex = re.compile("".join(parts).encode(), re.DOTALL)
started = time.perf_counter()
for key in keys:
    regex.fullmatch(key.encode())
print(time.perf_counter() - started)
"""


def app_keys(count: int) -> list[str]:
    keys = []
    for n in range(count):
        some = uuid.UUID(int=n * 7919 + 1)
        keys.append(("user:{}", "item:{}", "items:{}:" + some.hex + ":0:100")[n % 3].format(some))
    return keys


def before(pattern: str, keys: list[str], budget: float) -> str:
    try:
        result = subprocess.run(
            [sys.executable, "-c", _BEFORE, pattern, *keys],
            capture_output=True,
            text=True,
            timeout=budget,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return f"over {budget * KEYS / len(keys):.0f} s"
    return f"{float(result.stdout) * KEYS / len(keys):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--budget", type=float, default=20)
    args = parser.parse_args()
    keys = app_keys(KEYS)
    print(f"| pattern | after: invalidate, {KEYS} keys | before: {KEYS} keys, scaled |")
    print("|---|---:|---:|")
    for pattern in PATTERNS:
        cache = Cache(cache_settings(env={"CACHE_LOCAL_MAXSIZE": str(2 * KEYS)}))
        for key in keys:
            cache.set(key, 1)
        started = time.perf_counter()
        cache.invalidate(pattern)
        after = time.perf_counter() - started
        cache.close()
        was = before(pattern, keys[: args.sample], args.budget)
        shown = pattern if len(pattern) < 40 else pattern[:37] + "..."
        print(f"| `{shown}` ({len(pattern)} chars) | {after * 1e3:.1f} ms | {was} |", flush=True)


if __name__ == "__main__":
    main()

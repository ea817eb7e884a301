"""The sign-in counters kept in-process (Redis unset or down) hold a real account's count
however many other entries a flood creates."""

import uuid

from shared.cache import Cache
from shared.throttle import _Counters, _key, account
from tests.support.redis_server import cache_settings

FREE_ACCOUNT_FAILURES = 5
FREE_CLIENT_FAILURES = 1_000_000  # the flood below comes from one client: only accounts count
CAP_MS = 60_000


def test_a_flood_of_made_up_addresses_cannot_push_a_real_accounts_count_out():
    cache = Cache(cache_settings())  # no Redis: the counters live in this process
    counters = _Counters(run=cache.run, maxsize=50)
    frees = (FREE_ACCOUNT_FAILURES, FREE_CLIENT_FAILURES)
    victim = account(uuid.uuid4(), "victim@example.com")
    attacker = _key("client", "203.0.113.9")
    guess = (_key(victim.kind, victim.value), attacker)
    try:
        for _ in range(FREE_ACCOUNT_FAILURES):
            assert counters.attempt(guess, frees, CAP_MS) == 0
        assert counters.attempt(guess, frees, CAP_MS) > 0
        for n in range(500):  # ten times the store's size, each a new entry
            made_up = account(None, f"nobody-{n}@example.com")
            counters.attempt((_key(made_up.kind, made_up.value), attacker), frees, CAP_MS)
        assert counters.attempt(guess, frees, CAP_MS) > 0, "the victim's delay was pushed out"
    finally:
        cache.close()

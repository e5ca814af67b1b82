"""Cases 1-4 and 7: one thread, one call per operation (hits, and misses that evict).

Each loop is the same code for every peer, so its own cost (the loop and the call itself)
is in every figure alike."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from itertools import repeat
from typing import Any

from harness.functions import LOAD_SOURCE, METHOD_SOURCE, ONE_ARG_SOURCE, fresh_function, serial
from harness.results import CaseResult
from harness.timing import per_call_case


def hit_positional(f: Callable) -> Callable[[int], None]:
    f(42, "model-a")

    def body(n: int) -> None:
        for _ in repeat(None, n):
            f(42, "model-a")

    return body


def hit_keywords(f: Callable) -> Callable[[int], None]:
    f(x=42, name="model-a")

    def body(n: int) -> None:
        for _ in repeat(None, n):
            f(x=42, name="model-a")

    return body


def hit_method(obj: Any) -> Callable[[int], None]:
    obj.predict(1)

    def body(n: int) -> None:
        for _ in repeat(None, n):
            obj.predict(1)

    return body


MISS_KEYS = 10_000
MISS_MAX_ENTRIES = 1_000


def miss_cycle(f: Callable) -> Callable[[int], None]:
    """Every call a miss: 10,000 keys cycle through 1,000 slots, so a key has long been
    evicted when it comes round again."""
    keys = itertools.cycle(range(MISS_KEYS))
    for k in itertools.islice(keys, 2 * MISS_MAX_ENTRIES):  # fill, then steady eviction
        f(k)

    def body(n: int) -> None:
        for k in itertools.islice(keys, n):
            f(k)

    return body


def case_hit_positional(peers, settings):
    def make(peer):
        return hit_positional(peer.decorate(fresh_function(LOAD_SOURCE, "load")))

    return CaseResult(
        "1", 'hit, positional `f(42, "model-a")`', "ns/call", per_call_case(peers, settings, make)
    )


def case_hit_keywords(peers, settings):
    def make(peer):
        return hit_keywords(peer.decorate(fresh_function(LOAD_SOURCE, "load_kw")))

    return CaseResult(
        "2",
        'hit, keywords `f(x=42, name="model-a")`',
        "ns/call",
        per_call_case(peers, settings, make),
    )


def case_hit_ttl_max_entries(peers, settings):
    def make(peer):
        f = peer.decorate(fresh_function(LOAD_SOURCE, "load_ttl"), ttl=3600, max_entries=1000)
        return hit_positional(f)

    return CaseResult(
        "3",
        "hit with `ttl=3600, max_entries=1000`",
        "ns/call",
        per_call_case(peers, settings, make),
        note="lru_cache has no ttl: ratios in this row divide by lru_cache's case-1 figure "
        "(the same call without a ttl).",
    )


def case_miss_insert(peers, settings):
    def make(peer):
        f = peer.decorate(fresh_function(ONE_ARG_SOURCE, "miss"), max_entries=MISS_MAX_ENTRIES)
        return miss_cycle(f)

    return CaseResult(
        "4",
        f"miss + insert, {MISS_KEYS:,} keys through `max_entries={MISS_MAX_ENTRIES:,}`",
        "ns/call",
        per_call_case(peers, settings, make),
        note=(
            "Every call misses, runs the (trivial) body, inserts and evicts the LRU entry. "
            "Once Streamlit is imported in the process (as it is whenever the "
            "st.cache_resource peer runs), every fastcache miss also asks Streamlit whether "
            "a script run is active, for its spinner and element recording; a program "
            "without Streamlit skips that (`--peers fastcache,lru_cache` measures it so)."
        ),
    )


def case_method_hit(peers, settings):
    def make(peer):
        method = peer.decorate(fresh_function(METHOD_SOURCE, "predict"))
        cls = type(f"Model{next(serial)}", (), {"predict": method})
        return hit_method(cls())

    return CaseResult(
        "7",
        "hit on a method `obj.predict(1)`",
        "ns/call",
        per_call_case(peers, settings, make),
        note="`def predict(_self, x)`: the leading underscore keeps the instance out of "
        "fastcache's and Streamlit's key; the other peers hash it by identity.",
    )

"""The example app under a real `streamlit run` server, driven over its websocket by two
tabs as a browser drives it: cached bodies run once across reruns and sessions, each
session keeps its own cart, the menu's "Clear cache" clears fastcache, and a closed tab's
session-scoped values are released."""

from __future__ import annotations

import contextlib
import re
import time

from served_app import EXAMPLE_APP, Tab, served


def _ids(page: list[str]) -> dict[str, str]:
    """{"connection": id, "model": id, "cart": id} from the example's page."""
    found = {}
    for line in page:
        match = re.match(r"(connection|model|cart) ([0-9a-f]{8})", line)
        if match:
            found[match.group(1)] = match.group(2)
    assert set(found) == {"connection", "model", "cart"}, page
    return found


def test_example_app_on_a_real_server(tmp_path):
    started = time.monotonic()
    with contextlib.ExitStack() as tabs:
        with served(EXAMPLE_APP, tmp_path, FASTCACHE_EXAMPLE_LOAD_SECONDS="0.2") as server:
            a, b = Tab(server), Tab(server)
            tabs.callback(a.close)  # after the server has stopped (below)
            a1, a2, b1, b2 = _ids(a.run()), _ids(a.run()), _ids(b.run()), _ids(b.run())
            assert a.session_id != b.session_id
            # Shared resources: computed once for both sessions and every rerun.
            assert a1["model"] == a2["model"] == b1["model"] == b2["model"]
            assert a1["connection"] == b2["connection"]
            assert server.log().count("loaded model") == 1
            # Session-scoped: each session keeps its own cart across its reruns.
            assert a1["cart"] == a2["cart"] != b1["cart"] == b2["cart"]

            a.clear_cache()  # the menu's "Clear cache"; a's next run comes after it
            a3, b3 = _ids(a.run()), _ids(b.run())
            assert a3["model"] == b3["model"] != a1["model"]
            assert a3["connection"] != a1["connection"]
            assert a3["cart"] not in (a1["cart"], b1["cart"])
            server.wait_for_log(f"released connection {a1['connection']}")
            server.wait_for_log(f"released cart {a1['cart']}")
            server.wait_for_log(f"released cart {b1['cart']}")
            assert server.log().count("loaded model") == 2

            b.close()  # the tab closes: its session's values are released
            server.wait_for_log(f"released cart {b3['cart']}")
            assert f"released cart {a3['cart']}" not in server.log()
        # The server stopped with a's tab still open: shutting its session down released
        # a's cart.
        assert f"released cart {a3['cart']}" in server.log()
    assert time.monotonic() - started < 120, "bounded: the whole test"

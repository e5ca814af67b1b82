"""`python -m fastcache`: a short tour of what cache_resource does — a miss, a hit, a
clear and an expiry — printed as it happens."""

import threading
import time

import fastcache


class Connection:
    """Stands in for a database connection: expensive to open, must be closed."""

    opened = 0

    def __init__(self, url: str) -> None:
        Connection.opened += 1
        self.url = url
        self.number = Connection.opened
        self.closed = False

    def close(self) -> None:
        self.closed = True
        print(f"    on_release: closed connection #{self.number} to {self.url}")

    def __repr__(self) -> str:
        return f"<Connection #{self.number} to {self.url}>"


@fastcache.cache_resource(ttl=0.5, max_entries=8, on_release=Connection.close)
def get_connection(url: str, *, _timeout: float = 5.0) -> Connection:
    time.sleep(0.2)  # the expensive part: connecting
    return Connection(url)


def timed(label: str, url: str, **kwargs: float) -> Connection:
    start = time.perf_counter()
    conn = get_connection(url, **kwargs)
    elapsed = (time.perf_counter() - start) * 1e6
    print(f"{label:<52} -> {conn!r} in {elapsed:,.0f} µs")
    return conn


def main() -> None:
    print("fastcache demo: @fastcache.cache_resource(ttl=0.5, max_entries=8, on_release=close)\n")
    first = timed("miss: first call connects", "postgresql://db/a")
    again = timed("hit: same arguments, same object", "postgresql://db/a")
    assert again is first
    timed("hit: keyword spelling and _timeout are ignored", url="postgresql://db/a", _timeout=1.0)

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(get_connection("postgresql://db/b")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"8 threads asking for db/b at once got {len({id(r) for r in results})} object(s)")

    print("\nclear: get_connection.clear('postgresql://db/a')")
    get_connection.clear("postgresql://db/a")
    timed("miss after clear: reconnects", "postgresql://db/a")

    print("\nexpiry: waiting 0.6 s, past the 0.5 s ttl")
    time.sleep(0.6)
    timed("miss after expiry: reconnects", "postgresql://db/a")

    print(f"\ncache_info: {get_connection.cache_info()}")
    print("cache_resource.clear(): every cache")
    fastcache.cache_resource.clear()
    print(f"connections opened in all: {Connection.opened}")


if __name__ == "__main__":
    main()

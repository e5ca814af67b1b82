"""Functions under test: every case and repeat gets a function of its own name, because
fastcache and Streamlit find a function's cache by module + qualname + source."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

serial = itertools.count()


def fresh_function(source: str, prefix: str, **env: Any) -> Callable:
    name = f"{prefix}_{next(serial)}"
    namespace: dict[str, Any] = {"__name__": "bench_cache_cases", **env}
    code = compile(source.format(name=name), f"<bench {name}>", "exec")
    exec(code, namespace)  # noqa: S102 - our own source, to give each function its own name
    return namespace[name]


LOAD_SOURCE = "def {name}(x, name):\n    return (x, name)\n"
ONE_ARG_SOURCE = "def {name}(x):\n    return x\n"
METHOD_SOURCE = "def {name}(_self, x):\n    return x\n"

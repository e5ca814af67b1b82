"""Awaiting a cached ``async def``: the coroutine a call returns.

The native side computes the key when the function is called; this coroutine looks the
key up when it is awaited, inside the running task, and either returns the cached value,
waits (without blocking the event loop) for the task or thread already computing it, or
computes it. A waiter's cancellation never reaches the computation; the computing task's
cancellation (or exception) hands the computation to the next waiter.
"""

from __future__ import annotations

import asyncio
from typing import Any

_HIT, _WAIT, _OWN = 0, 1, 2


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # driven by hand, outside a running loop
        return None


async def resolve(call: Any) -> Any:
    while True:
        kind, payload = call.claim(_current_task())
        if kind == _HIT:
            return payload
        if kind == _WAIT:
            await _finished(payload)
            continue
        try:
            value = await call.invoke()
        except BaseException:
            payload.abandon()
            raise
        return payload.complete(value)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _finished(waiter: Any) -> None:
    """Waits until another caller's computation of the key is over (by whatever thread)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(_settle, done)
        except RuntimeError:  # this waiter's loop has closed meanwhile: nobody to wake
            pass

    waiter.add_done_callback(wake)
    await done

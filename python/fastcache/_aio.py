"""Awaiting a cached ``async def``: the coroutine a call returns.

The native side computes the key when the function is called; this coroutine looks the
key up when it is awaited, inside the running task, and either returns the cached value,
waits (without blocking the event loop) for the task or thread already computing it, or
computes it. A waiter's cancellation never reaches the computation; the computing task's
cancellation (or exception) hands the computation to the next waiter.

A stale value (``refresh_mode="background"``) is returned at once and refreshed by a task
on the same event loop, so a value bound to that loop (a stream, an async client) is
replaced by one bound to it too.

While a task computes a key, its context records that computation (``_computing``): a task
started inside it (``asyncio.gather``, ``wait_for``, ``create_task``, a ``TaskGroup``) copies
the context, and if it then asks for that very key it raises ``ReentrantCallError`` instead
of waiting for its own ancestor. Waits between unrelated tasks and threads are checked for
cycles natively.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from typing import Any

_HIT, _WAIT, _OWN, _STALE = 0, 1, 2, 3

# How often a caller waiting for another event loop's refresh checks that loop still runs.
_STALL_CHECK = 0.25

# The flights (ids) the current task and its ancestors are computing.
_computing: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
    "fastcache_computing", default=()
)

# The refresh tasks of each event loop, kept alive while their loop is: the loop itself
# holds tasks only weakly. A loop that is dropped unfinished drops its refreshes with it
# (each then gives its key back).
_refreshes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # driven by hand, outside a running loop
        return None


async def resolve(call: Any) -> Any:
    missed = False
    # Inside a Streamlit script run: its spinner and element recorder, for the whole miss.
    app_miss = None
    try:
        while True:
            kind, payload = call.claim(_current_task(), _computing.get())
            if kind == _HIT:
                return payload
            if kind == _STALE:
                value, refresh = payload
                _refresh_on_this_loop(call, refresh)
                return value
            if not missed:
                missed = True
                app_miss = call.begin_miss()
            if kind == _WAIT:
                await _finished(payload)
                continue
            marked = _computing.set((*_computing.get(), payload.flight_id))
            try:
                if app_miss is None:
                    value, replay = await call.invoke(), None
                else:
                    value, replay = await app_miss.compute_async(call.invoke)
            except BaseException:
                payload.abandon()
                raise
            finally:
                try:
                    _computing.reset(marked)
                except ValueError:  # closed from outside its task (collected unfinished)
                    pass
            return payload.complete(value, replay)
    finally:
        if app_miss is not None:
            app_miss.close()


def _refresh_on_this_loop(call: Any, refresh: Any) -> None:
    """Starts the refresh as a task of the running loop, in an empty context: it belongs
    to no caller, so it inherits nothing from the one that found the value stale."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # driven by hand, outside a running loop: nowhere to refresh
        refresh.abandon()
        return
    task = loop.create_task(_refresh(call, refresh), context=contextvars.Context())
    tasks = _refreshes.setdefault(loop, set())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _refresh(call: Any, refresh: Any) -> None:
    flight_id = refresh.begin(asyncio.current_task())
    if flight_id is None:
        return
    _computing.set((flight_id,))  # this task's own context, made for it
    try:
        value = await call.invoke()
    except Exception as exc:  # noqa: BLE001 - logged natively; the stale value stays
        refresh.fail(exc)
    except BaseException:  # cancelled (its loop is closing), or Ctrl-C: given up
        refresh.abandon()
        raise
    else:
        refresh.complete(value)


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
    try:
        if not waiter.may_stall:
            await done
            return
        # A refresh run by a task of another event loop: should that loop stop with the
        # refresh pending, take the key back rather than wait for a loop that may never run.
        while not done.done():
            await asyncio.wait((done,), timeout=_STALL_CHECK)
            if not done.done() and waiter.take_over_if_stalled():
                return
    finally:
        waiter.done()

"""Run a conversion with room for Keras's recursive walks over deep models.

tf_keras rebuilds a functional model by walking its layer graph recursively
(``Functional._build_map_helper``, a frame per layer), so loading a model about a
thousand layers deep (``ResNetRS270``) exceeds Python's default limit of 1000 frames:
``RecursionError``. The conversion runs in a thread of its own with a large stack and a
raised frame limit instead, restored afterwards.

An interrupt (Ctrl-C, or SIGTERM turned into one) arrives in the caller's thread, whose
cleanup then deletes the staging directory. The conversion thread is stopped first, so
it cannot write into that directory while it is being deleted.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Frames a conversion may nest: ten times the deepest published model's walk.
RECURSION_LIMIT = 20_000
# The thread's stack: address space, committed only as it is used. The frames of
# Keras's walk pass through C (attribute lookups, properties), ~10 KiB of C stack per
# level; 20000 levels fit in 256 MiB.
STACK_BYTES = 256 * 1024 * 1024


class Cancelled(BaseException):
    """Raised inside the conversion thread when its caller was interrupted.

    A ``BaseException`` so that converter code catching ``Exception`` lets it through.
    """


def _raise_in(thread: threading.Thread) -> None:
    """Ask ``thread`` to raise ``Cancelled`` at its next Python instruction."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(Cancelled))


def _stop(thread: threading.Thread, began: threading.Event, done: threading.Event) -> None:
    """Make ``thread`` raise ``Cancelled`` and wait until it has ended.

    Waits on events, not ``Thread.join``: an interrupted ``join`` (CPython 3.11) can
    mark a running thread as stopped, so a second ``join`` returns at once. Polled:
    ``Cancelled`` may land in the thread's last step, before it sets ``done``. An
    interrupt during this wait gives up on the thread (a daemon, gone with the process).
    """
    # An interrupt inside Thread.start(): the new thread starts within moments, or never.
    if not began.wait(1.0):
        return
    _raise_in(thread)
    while not done.wait(0.05) and thread.is_alive():
        pass


def call_with_deep_stack(fn: Callable[[], T]) -> T:
    """``fn()`` in a thread with ``STACK_BYTES`` of stack and at least ``RECURSION_LIMIT``
    frames; its result, or its exception re-raised here. An interrupt of the caller
    (KeyboardInterrupt) stops the thread before it propagates."""
    outcome: dict[str, object] = {}
    began, done = threading.Event(), threading.Event()

    def run() -> None:
        try:
            began.set()
            try:
                outcome["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = e
            finally:
                done.set()
        except Cancelled:  # landed outside fn: nothing left to stop
            pass

    old_limit = sys.getrecursionlimit()
    old_size = threading.stack_size()
    sys.setrecursionlimit(max(old_limit, RECURSION_LIMIT))
    # A daemon: a process that exits does not wait for it.
    thread = threading.Thread(target=run, name="tfjsconv-convert", daemon=True)
    try:
        threading.stack_size(STACK_BYTES)
        try:
            thread.start()
        finally:
            threading.stack_size(old_size)
        done.wait()
    except BaseException:
        _stop(thread, began, done)
        raise
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]

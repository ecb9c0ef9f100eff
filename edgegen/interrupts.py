"""Ctrl-C, SIGTERM and SIGHUP as an exception that cannot be lost.

The CLI turns each of these signals into ``Terminated``, so that every
cleanup (``finally``, ``except BaseException``) runs. A Python signal handler
raises wherever the main thread happens to be, though, and some places
swallow what it raises (a ``__del__``, a C extension that runs Python code
and clears the error): seen here as a SIGTERM that edgegen went on ignoring.
So the signal is also remembered, and ``check()`` raises it again; the waits
of long steps (external tools, QEMU) and the commit of an output folder call
it. The first signal is the one that counts: later ones, which would cut
the cleanups short, are ignored. Inside ``deferred()`` (a few renames that
must happen whole) a signal is only remembered, for the next ``check()``.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from edgegen.errors import Terminated

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_pending: int | None = None
_deferring = False


def _raise(signum: int, _frame) -> None:
    global _pending
    if _pending is not None:
        return
    _pending = signum
    if not _deferring:
        raise Terminated(signum)


def check() -> None:
    """Raise ``Terminated`` if a signal arrived and its exception was swallowed."""
    if _pending is not None:
        raise Terminated(_pending)


@contextlib.contextmanager
def deferred():
    """Within: a signal is remembered, not raised (``check()`` raises it later)."""
    global _deferring
    outer = _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = outer


@contextlib.contextmanager
def signals_raise():
    """Within: the signals raise ``Terminated`` (main thread only; elsewhere
    Python cannot install handlers and nothing changes)."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending = None
    old = {s: signal.signal(s, _raise) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        _pending = None

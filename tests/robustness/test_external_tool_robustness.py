"""External tools stop with edgegen: an exception while a tool runs (Ctrl-C,
SIGTERM) kills the tool and everything it started."""

import signal
import threading
import time

import pytest

from edgegen.external_tool import run_tool


def test_run_tool_returns_what_the_tool_printed():
    result = run_tool(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_a_signal_on_another_thread_stops_the_wait_and_the_tools_children(tmp_path):
    """The signal lands on a worker thread, as it can with torch's thread
    pool; the main thread must still act on it within a fraction of a second."""
    marker = tmp_path / "child.pid"

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGUSR1, interrupt)
    # The worker signals itself: the C-level handler runs on the worker and
    # the main thread, blocked in a system call, is not woken by it.
    worker = threading.Thread(target=lambda: (time.sleep(0.5),
                                              signal.pthread_kill(threading.get_ident(),
                                                                  signal.SIGUSR1)))
    try:
        worker.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_tool(["sh", "-c", f"sleep 30 & echo $! > {marker}; wait"])
        assert time.monotonic() - started < 5
    finally:
        worker.join()
        signal.signal(signal.SIGUSR1, old)
    child = int(marker.read_text())
    time.sleep(0.2)
    assert not _running(child)  # the tool's own child was killed too


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

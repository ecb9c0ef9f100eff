"""Signals become an exception that is never lost: swallowed once, raised
again at the next check; deferred in the few renames that must happen whole."""

import os
import signal

import pytest

from edgegen import interrupts
from edgegen.errors import Terminated
from edgegen.output_folder import atomic_folder


def swallowing(signum):
    """Like a __del__ or a C extension: whatever is raised in here is lost."""
    try:
        os.kill(os.getpid(), signum)
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            pass
    except BaseException:
        pass


@pytest.mark.parametrize("signum", interrupts.SIGNALS)
def test_a_swallowed_signal_is_raised_again_by_check(signum):
    with interrupts.signals_raise():
        swallowing(signum)
        with pytest.raises(Terminated) as raised:
            interrupts.check()
        assert raised.value.signum == signum
    interrupts.check()  # outside, nothing is pending any more


def test_later_signals_do_not_cut_the_cleanup_short():
    with interrupts.signals_raise():
        with pytest.raises(Terminated):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):
                    pass
            finally:  # the cleanup: a second signal here is ignored
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):
                    pass


def test_a_signal_inside_deferred_waits_for_the_next_check():
    with interrupts.signals_raise():
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(1000):
                pass
        with pytest.raises(Terminated):
            interrupts.check()


def test_a_swallowed_signal_stops_the_commit_of_an_output_folder(tmp_path):
    with interrupts.signals_raise():
        with pytest.raises(Terminated):
            with atomic_folder(tmp_path / "a" / "out", False) as folder:
                (folder / "model.c").write_text("int x;\n")
                swallowing(signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []

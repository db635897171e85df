"""`shop run all` stops every process it started on Ctrl-C and on SIGTERM."""

from __future__ import annotations

import os
import signal

import pytest

from tests.e2e.stack import e2e_stack


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_supervisor_and_every_child(sig):
    stack = e2e_stack()
    stack.start()
    children = stack.pids()
    assert set(children) == {"gateway", "workers", "streams", "relay"}
    assert stack.stop(sig, grace=40) == 0
    for pid in children.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    output = stack.output()
    assert "all processes stopped" in output
    for name in children:
        assert f"{name}: stopped" in output or name == "gateway"

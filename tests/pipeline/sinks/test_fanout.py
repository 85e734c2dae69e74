"""FanOut: one failing sink never stops the others; reporting, disabling and closing."""

from __future__ import annotations

import logging

import pytest

from reidstream.pipeline.sinks import FanOut, Sink, SinkBase, SinkCloseError


class Recorder(SinkBase):
    def __init__(self, name="rec", fail_on=(), fail_close=False):
        self.name, self.fail_on, self.fail_close = name, set(fail_on), fail_close
        self.seen, self.close_calls = [], 0

    def _write(self, result):
        self.seen.append(result.index)
        if result.index in self.fail_on or "all" in self.fail_on:
            raise OSError(f"disk full at {result.index}")

    def _close(self):
        self.close_calls += 1
        if self.fail_close:
            raise OSError("cannot flush")


def test_failing_sink_is_reported_and_disabled_while_others_go_on(make_result, caplog):
    a, boom, b = Recorder("a"), Recorder("boom", fail_on={"all"}), Recorder("b")
    reported = []
    fan = FanOut([a, boom, b], on_error=lambda name, r, e: reported.append((name, r.index, type(e).__name__)))
    assert isinstance(fan, Sink) and fan.max_failures == 3
    with caplog.at_level(logging.WARNING, logger="reidstream.pipeline.sinks.fanout"):
        for i in range(6):
            fan(make_result(i))
    assert a.seen == b.seen == list(range(6))
    assert boom.seen == [0, 1, 2]  # not called once disabled
    assert reported == [("boom", 0, "OSError"), ("boom", 1, "OSError"), ("boom", 2, "OSError")]
    assert fan.failures == {"a": 0, "boom": 3, "b": 0}
    assert fan.disabled == {"boom"} and fan.active == ["a", "b"]
    text = caplog.text
    assert "sink 'boom' failed on frame 0" in text and "disk full at 0" in text
    assert "'boom' disabled after 3 consecutive failures" in text
    fan.close()
    assert a.closed and boom.closed and b.closed  # disabled sinks are closed too


def test_success_resets_the_consecutive_count(make_result):
    flaky = Recorder("flaky", fail_on={1, 3, 5, 6})
    fan = FanOut([flaky], max_failures=2)
    for i in range(7):
        fan(make_result(i))
    assert fan.failures["flaky"] == 4
    assert fan.disabled == {"flaky"}  # only 5 and 6 in a row
    assert flaky.seen == list(range(7))


def test_close_closes_every_sink_and_collects_errors(make_result):
    a, bad, b = Recorder("a"), Recorder("bad", fail_close=True), Recorder("b", fail_close=True)
    fan = FanOut([a, bad, b])
    fan(make_result(0))
    with pytest.raises(SinkCloseError) as info:
        fan.close()
    assert set(info.value.errors) == {"bad", "b"} and "cannot flush" in str(info.value)
    assert (a.close_calls, bad.close_calls, b.close_calls) == (1, 1, 1)
    fan.close()  # idempotent
    assert (a.close_calls, bad.close_calls, b.close_calls) == (1, 1, 1)
    with pytest.raises(RuntimeError, match="closed"):
        fan(make_result(1))


def test_names_stop_flag_and_interrupts(make_result):
    x, y = Recorder("x"), Recorder("x")
    fan = FanOut([x, y])
    assert list(fan.sinks) == ["x", "x#2"]
    assert not fan.stop_requested
    y.stop_requested = True
    assert fan.stop_requested

    class Interrupt(Recorder):
        def _write(self, result):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        FanOut([Interrupt()])(make_result(0))
    with pytest.raises(ValueError, match="max_failures"):
        FanOut([], max_failures=0)
    with pytest.raises(TypeError, match="callable"):
        FanOut([object()])
    seen = []

    def plain(result):
        seen.append(result.index)

    fan = FanOut([plain])
    fan(make_result(3))
    fan.close()
    assert seen == [3] and list(fan.sinks) == ["plain"]

"""WindowSink: a clear error without a GUI; q / Esc request a stop (no real window is opened)."""

from __future__ import annotations

import pytest

from reidstream.pipeline.sinks import WindowSink
from reidstream.pipeline.sinks import display

MESSAGE = "--show needs a desktop OpenCV build (opencv-python, not opencv-python-headless) and a display"


def test_real_environment_without_a_gui_raises_a_clear_error():
    if display.gui_problem() is None:
        pytest.skip("this machine has a GUI and a display; not opening a window in the tests")
    with pytest.raises(RuntimeError) as info:
        WindowSink()
    assert str(info.value).startswith(MESSAGE)


def test_headless_build_and_missing_display(monkeypatch):
    monkeypatch.setattr(display, "gui_backend", lambda: "NONE")
    with pytest.raises(RuntimeError, match="no GUI backend") as info:
        WindowSink()
    assert MESSAGE in str(info.value)
    monkeypatch.setattr(display, "gui_backend", lambda: "QT5")
    monkeypatch.setattr(display.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="DISPLAY") as info:
        WindowSink()
    assert MESSAGE in str(info.value)


class FakeCv2:
    """The window calls of cv2, recorded; everything else is the real module."""

    def __init__(self, real, keys, fail_named=False):
        self._real, self.keys, self.fail_named, self.shown, self.destroyed = real, list(keys), fail_named, [], []

    def __getattr__(self, name):
        return getattr(self._real, name)

    def namedWindow(self, title, flags=0):
        if self.fail_named:
            raise self._real.error("The function is not implemented")

    def imshow(self, title, img):
        self.shown.append(img.shape)

    def waitKey(self, delay):
        return self.keys.pop(0) if self.keys else -1

    def getWindowProperty(self, title, prop):
        return 1.0

    def destroyWindow(self, title):
        self.destroyed.append(title)


@pytest.fixture
def fake_gui(monkeypatch):
    def install(keys=(), fail_named=False):
        fake = FakeCv2(display.cv2, keys, fail_named)
        monkeypatch.setattr(display, "cv2", fake)
        monkeypatch.setattr(display, "gui_problem", lambda: None)
        return fake
    return install


def test_named_window_failure_becomes_runtime_error(fake_gui):
    fake_gui(fail_named=True)
    with pytest.raises(RuntimeError, match="namedWindow failed") as info:
        WindowSink()
    assert str(info.value).startswith(MESSAGE)


@pytest.mark.parametrize("key", [ord("q"), 27])
def test_q_or_escape_requests_a_stop(fake_gui, make_result, key):
    fake = fake_gui(keys=(-1, key))
    sink = WindowSink("test")
    sink(make_result(0))
    assert not sink.stop_requested
    sink(make_result(1))
    assert sink.stop_requested and len(fake.shown) == 2
    sink.close()
    sink.close()
    assert fake.destroyed == ["test"]

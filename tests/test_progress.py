"""The live view of `run`: what it counts and how it draws (pure rendering, then a real stream)."""
import io

from datakit.progress import Board, Counts, LiveView, render


def test_render_shows_sources_clips_stages_rejects_and_time_left():
    c = Counts("demo", ["probe", "split", "filter"], listed=4, listing_done=True, started=0.0)
    c.per_stage = {"probe": [4, 4, 0], "split": [4, 16, 0], "filter": [10, 7, 3]}
    view = LiveView("demo", ["probe", "split", "filter"], stream=io.StringIO())
    view.counts = c
    for i in range(4):                      # source a: all 4 clips at the sink
        view.finished("a", 4, f"a{i}", None if i else "low_detail")
    view.finished("b", 4, "b0", None)       # source b: 1 of 4
    view.finished("c", None, "c", "unreadable")    # source c rejected before split
    lines = render(c, now=30.0)
    text = "\n".join(lines)
    assert lines[0].startswith("demo: 0:30 elapsed")
    # 2 done + 1/4 of b, of 4 sources: 0.5625 done after 30 s -> 23 s left
    assert "~0:23 left" in lines[0]
    assert "sources 4 listed · 2 done" in text and "clips 8 made · 4 kept · 2 rejected" in text
    assert "probe 4→4" in text and "split 4→16" in text and "filter 10→7 (3 rejected)" in text
    assert "rejects: low_detail 1, unreadable 1" in text
    assert render(c, now=30.0, final=True)[0].endswith("· done")


def test_no_estimate_until_listing_is_done_and_something_finished():
    c = Counts("demo", [], listed=10, started=0.0)
    assert "left" not in render(c, now=5.0)[0] and "10+ listed" in render(c, now=5.0)[1]
    c.listing_done = True
    assert "left" not in render(c, now=5.0)[0]


def test_lines_fit_the_width():
    c = Counts("x", [f"stage{i}" for i in range(12)], listed=1, listing_done=True)
    assert all(len(line) <= 60 for line in render(c, width=60))
    assert sum("stage" in line for line in render(c, width=60)) > 1


def test_board_adds_up_batches():
    b = Board()
    b.add("split", 1, 5, 0)
    b.add("split", 2, 7, 1)
    assert b.snapshot() == {"split": [3, 12, 1]}


def test_off_a_terminal_it_prints_lines_not_cursor_codes():
    out = io.StringIO()
    view = LiveView("demo", ["probe"], stream=out, interval=0.01)
    view.listed(2)
    view.listing_done()
    view.start()
    view.finished("s", None, "s", "unreadable")
    view.stop()
    text = out.getvalue()
    assert "\x1b[" not in text and "demo:" in text and "1 rejected" in text
    assert text.splitlines()[-1].strip().startswith("rejects: unreadable 1")


def test_disabled_view_prints_nothing():
    out = io.StringIO()
    view = LiveView("demo", ["probe"], stream=out, enabled=False).start()
    view.finished("s", 2, "k", None)
    view.stop()
    assert out.getvalue() == ""


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_one_line_status_shows_elapsed_on_a_terminal_and_clears_itself():
    import time

    from datakit.commands import status

    out = _Tty()
    with status("degrading 17 frames", stream=out, after=0.0) as st:
        time.sleep(0.7)
        st.set("encoding lr.mp4")
        time.sleep(0.6)
    text = out.getvalue()
    assert "degrading 17 frames… " in text and "encoding lr.mp4… 1s" in text
    assert text.endswith("\r\x1b[2K")
    quiet = _Tty()
    with status("x", stream=quiet, after=0.0, quiet=True):
        time.sleep(0.6)
    piped = io.StringIO()
    with status("x", stream=piped, after=0.0):
        time.sleep(0.6)
    assert quiet.getvalue() == "" and piped.getvalue() == ""

"""The benchmark's py-spy summary, on a hand-written capture."""

from __future__ import annotations

from loadtest.throughput.profile import summarize

CAPTURE = [
    # 10 samples: idle in the event loop's select
    "thread (0x1): MainThread;run (asyncio/base_events.py:600);select (selectors.py:468) 10",
    # 30 samples in the aggregation, 20 of them in visits
    "thread (0x1): MainThread;run (asyncio/base_events.py:600);"
    "aggregate (streams/aggregators/__init__.py:80);"
    "add_view (streams/aggregators/visits.py:180) 20",
    "thread (0x1): MainThread;run (asyncio/base_events.py:600);"
    "aggregate (streams/aggregators/__init__.py:80) 10",
    # early samples of the same thread, before threading named it
    "thread (0x1);decode (streams/ingest/decoder.py:170) 10",
    # another thread: not counted
    "thread (0x2): asyncio_0;read (redis/connection.py:300) 50",
]


def test_the_main_thread_is_summarized_by_hand() -> None:
    summary = summarize(CAPTURE)
    assert summary.samples == 50
    assert summary.thread == "MainThread (0x1)"
    assert abs(summary.idle_select - 10 / 50) < 1e-9
    shares = {(f.function, f.file): (f.inclusive, f.own) for f in summary.frames}
    assert shares[("aggregate", "streams/aggregators/__init__.py")] == (30 / 50, 10 / 50)
    assert shares[("add_view", "streams/aggregators/visits.py")] == (20 / 50, 20 / 50)
    assert shares[("decode", "streams/ingest/decoder.py")] == (10 / 50, 10 / 50)
    assert ("read", "redis/connection.py") not in shares
    first = summary.frames[0]
    assert (first.function, first.file) == ("aggregate", "streams/aggregators/__init__.py")

"""Response times are readable from seconds to two days (median and p90 within a bin)."""

from __future__ import annotations

from streams.aggregators.chat import bin_label
from streams.common.keys import RESPONSE_BINS_S
from streams.common.timebuckets import Bucket, Granularity
from streams.views.report import _quantile
from tests.unit.test_event_time import DAY, MIN, H, S, aggregator, at, chat, run


def test_bins_reach_two_days() -> None:
    assert (bin_label(5 * S), bin_label(5 * S + 1), bin_label(5 * H)) == ("5", "10", "28800")
    assert (bin_label(2 * DAY * S), bin_label(2 * DAY * S + 1)) == ("172800", "+Inf")


def test_median_and_p90_of_hour_long_responses_fall_in_their_bins() -> None:
    # Five conversations answered after 20 s, 40 min, 3 h, 5 h and 30 h (an e-mail desk;
    # conversations time out after 48 h here). By hand: median 3 h, in (2 h, 4 h];
    # p90 (rank 4.5 of 5) between 5 h and 30 h, in the bin of 30 h: (24 h, 48 h].
    waits = [20 * S, 40 * MIN, 3 * H, 5 * H, 30 * H]
    events = []
    for n, wait in enumerate(waits):
        asked = at(0, 10 + n)
        events += [chat("customer_message", asked, f"c{n}")]
        events += [chat("agent_message", asked + wait, f"c{n}", "ann")]
    events.sort(key=lambda e: e.event_ms)
    counters = run(aggregator(conversation_timeout_ms=48 * H), [events]).counters
    month = Bucket(Granularity.MONTH, 1_793_462_400)  # responses count when given: November
    cumulative, buckets = 0.0, []
    for bound in (*RESPONSE_BINS_S, float("inf")):
        label = "+Inf" if bound == float("inf") else str(bound)
        cumulative += counters[(month, f"cs_response_bin|le={label}")]
        buckets.append((float(bound), cumulative))
    assert buckets[-1][1] == 5
    median, p90 = _quantile(buckets, 0.5), _quantile(buckets, 0.9)
    assert median is not None and 2 * 3600 < median <= 4 * 3600
    assert p90 is not None and 24 * 3600 < p90 <= 48 * 3600

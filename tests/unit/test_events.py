import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.events import DecodeLimits, PageView, Rejection, RejectReason, decode

NOW = 1_795_745_000_000  # 2026-11-27T02:03:20Z
LIMITS = DecodeLimits(
    channels=frozenset({"search", "ads", "other"}),
    page_types=frozenset({"home", "product", "other"}),
    max_event_bytes=2048,
    max_future_skew_ms=300_000,
    max_age_ms=86_400_000,
)
VALID = {
    "schema": 1,
    "type": "page_view",
    "event_id": "e1",
    "event_time": "2026-11-27T10:00:00.250+08:00",
    "visitor_id": "v1",
    "session_id": "s1",
    "page": "/product/9",
    "page_type": "product",
    "channel": "search",
    "campaign": "d11",
    "device": "app",
}


def raw(**changes: object) -> bytes:
    doc = {**VALID, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def reason(data: bytes) -> RejectReason:
    result = decode(data, LIMITS, NOW)
    assert isinstance(result, Rejection), result
    return result.reason


def test_valid_page_view() -> None:
    event = decode(raw(), LIMITS, NOW)
    assert event == PageView(
        event_id="e1",
        event_ms=1_795_744_800_250,
        visitor_id="v1",
        session_id="s1",
        page="/product/9",
        page_type="product",
        channel="search",
        campaign="d11",
        device="app",
    )


def test_labels_off_the_allow_list_become_other() -> None:
    event = decode(raw(channel="tiktok", page_type="landing"), LIMITS, NOW)
    assert isinstance(event, PageView)
    assert (event.channel, event.page_type) == ("other", "other")


def test_epoch_milliseconds_are_accepted() -> None:
    event = decode(raw(event_time=NOW - 1000), LIMITS, NOW)
    assert isinstance(event, PageView) and event.event_ms == NOW - 1000


def test_each_kind_of_bad_input_has_its_reason() -> None:
    assert reason(b"{not json") is RejectReason.MALFORMED_JSON
    assert reason(b"\xff\xfe") is RejectReason.MALFORMED_JSON
    assert reason(b"[1, 2]") is RejectReason.NOT_AN_OBJECT
    assert reason(raw(schema=2)) is RejectReason.UNSUPPORTED_SCHEMA
    assert reason(raw(type="order_paid")) is RejectReason.UNKNOWN_TYPE
    assert reason(raw(visitor_id=...)) is RejectReason.MISSING_FIELD
    assert reason(raw(event_time=...)) is RejectReason.MISSING_FIELD
    assert reason(raw(visitor_id=42)) is RejectReason.WRONG_TYPE
    assert reason(raw(visitor_id="")) is RejectReason.WRONG_TYPE
    assert reason(raw(campaign=["x"])) is RejectReason.WRONG_TYPE
    assert reason(raw(event_time="yesterday")) is RejectReason.BAD_TIMESTAMP
    assert reason(raw(event_time="2026-11-27T10:00:00")) is RejectReason.BAD_TIMESTAMP
    assert reason(raw(event_time=True)) is RejectReason.WRONG_TYPE
    assert reason(raw(event_time=NOW + 300_001)) is RejectReason.TOO_FAR_IN_FUTURE
    assert reason(raw(event_time=NOW - 86_400_001)) is RejectReason.TOO_OLD
    assert reason(raw(page="x" * 3000)) is RejectReason.OVERSIZE


def test_nan_and_infinite_timestamps_are_rejected() -> None:
    # orjson refuses NaN/Infinity literals outright.
    assert reason(b'{"type":"page_view","event_time":NaN}') is RejectReason.MALFORMED_JSON
    assert reason(raw(event_time=1e400)) in {
        RejectReason.BAD_TIMESTAMP,
        RejectReason.MALFORMED_JSON,
    }


@settings(deadline=None)
@given(st.binary(max_size=4096))
def test_decoder_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    assert isinstance(decode(data, LIMITS, NOW), PageView | Rejection)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sets(st.sampled_from(sorted(VALID))),
    st.dictionaries(st.sampled_from(sorted(VALID)), json_values, max_size=4),
)
def test_decoder_never_raises_on_arbitrary_documents(
    dropped: set[str], replaced: dict[str, object]
) -> None:
    doc = {k: v for k, v in VALID.items() if k not in dropped} | replaced
    result = decode(json.dumps(doc).encode(), LIMITS, NOW)
    assert isinstance(result, PageView | Rejection)
    if isinstance(result, PageView):
        assert result.channel in LIMITS.channels and result.page_type in LIMITS.page_types

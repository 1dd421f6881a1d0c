import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.ingest.events import (
    EVENT_TYPES,
    DecodeLimits,
    Event,
    OrderLine,
    Rejection,
    RejectReason,
    TopicKind,
    decode,
    iso_ms,
    parse_time,
)

NOW = 1_795_745_000_000  # 2026-11-27T02:03:20Z
LIMITS = DecodeLimits(
    allow_lists={
        "channels": frozenset({"search", "ads", "other"}),
        "page_types": frozenset({"home", "product", "other"}),
        "devices": frozenset({"app", "pc", "other"}),
        "campaigns": frozenset({"d11", "other"}),
    },
    max_event_bytes=8192,
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
    assert isinstance(event, Event)
    assert (event.type, event.event_id, event.event_ms) == ("page_view", "e1", 1_795_744_800_250)
    assert {k: v for k, v in event.attrs.items() if v is not None} == {
        "visitor_id": "v1",
        "session_id": "s1",
        "page": "/product/9",
        "page_type": "product",
        "channel": "search",
        "campaign": "d11",
        "device": "app",
    }


def test_labels_off_the_allow_list_become_other() -> None:
    event = decode(
        raw(channel="tiktok", page_type="landing", campaign="", device="tv"), LIMITS, NOW
    )
    assert isinstance(event, Event)
    assert (event.text("channel"), event.text("page_type")) == ("other", "other")
    assert (event.text("campaign"), event.text("device")) == ("", "other")


def test_epoch_milliseconds_are_accepted() -> None:
    event = decode(raw(event_time=NOW - 1000), LIMITS, NOW)
    assert isinstance(event, Event) and event.event_ms == NOW - 1000


def test_each_kind_of_bad_input_has_its_reason() -> None:
    assert reason(b"{not json") is RejectReason.MALFORMED_JSON
    assert reason(b"\xff\xfe") is RejectReason.MALFORMED_JSON
    assert reason(b"[1, 2]") is RejectReason.NOT_AN_OBJECT
    assert reason(raw(schema=2)) is RejectReason.UNSUPPORTED_SCHEMA
    assert reason(raw(type="order_shipped")) is RejectReason.UNKNOWN_TYPE
    assert reason(raw(visitor_id=...)) is RejectReason.MISSING_FIELD
    assert reason(raw(event_time=...)) is RejectReason.MISSING_FIELD
    assert reason(raw(visitor_id=42)) is RejectReason.WRONG_TYPE
    assert reason(raw(visitor_id="")) is RejectReason.WRONG_TYPE
    assert reason(raw(campaign=["x"])) is RejectReason.WRONG_TYPE
    assert reason(raw(event_id=...)) is RejectReason.MISSING_FIELD
    assert reason(raw(event_time="yesterday")) is RejectReason.BAD_TIMESTAMP
    assert reason(raw(event_time="2026-11-27T10:00:00")) is RejectReason.BAD_TIMESTAMP
    assert reason(raw(event_time=True)) is RejectReason.WRONG_TYPE
    assert reason(raw(event_time=1e300)) is RejectReason.BAD_TIMESTAMP
    assert reason(raw(event_time=NOW + 300_001)) is RejectReason.TOO_FAR_IN_FUTURE
    assert reason(raw(event_time=NOW - 86_400_001)) is RejectReason.TOO_OLD
    assert reason(raw(page="x" * 9000)) is RejectReason.OVERSIZE


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
    assert isinstance(decode(data, LIMITS, NOW), Event | Rejection)


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
    assert isinstance(result, Event | Rejection)
    if isinstance(result, Event):
        assert result.text("channel") in LIMITS.allow_lists["channels"]
        assert result.text("page_type") in LIMITS.allow_lists["page_types"]


PAID = {
    "type": "order_paid",
    "event_id": "o1-paid",
    "event_time": NOW - 5000,
    "visitor_id": "v1",
    "member_id": "m1",
    "order_id": "o1",
    "channel": "ads",
    "amount": 199.99,
    "items": [{"product_id": "p1", "brand": "acme", "quantity": 2, "amount": 199.99}],
}


def paid(**changes: object) -> bytes:
    doc = {**PAID, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_order_amounts_become_exact_cents_and_lines_are_parsed() -> None:
    event = decode(paid(), LIMITS, NOW, TopicKind.ORDERS)
    assert isinstance(event, Event)
    assert event.number("amount") == 19_999
    assert event.items() == (OrderLine("p1", "", "acme", 2, 19_999),)


def test_bad_amounts_and_wrong_topics_are_rejected() -> None:
    def why(data: bytes, topic: TopicKind = TopicKind.ORDERS) -> RejectReason:
        result = decode(data, LIMITS, NOW, topic)
        assert isinstance(result, Rejection), result
        return result.reason

    assert why(paid(amount=-1)) is RejectReason.OUT_OF_RANGE
    assert why(paid(amount=1e12)) is RejectReason.OUT_OF_RANGE
    assert why(paid(amount="12")) is RejectReason.WRONG_TYPE
    assert why(paid(amount=True)) is RejectReason.WRONG_TYPE
    assert why(paid(items=[{"product_id": "p"}])) is RejectReason.MISSING_FIELD
    assert why(paid(items="p1")) is RejectReason.WRONG_TYPE
    assert why(paid(items=[{"product_id": "p", "amount": 1}] * 101)) is RejectReason.WRONG_TYPE
    assert why(paid(), TopicKind.CLICKSTREAM) is RejectReason.WRONG_TOPIC
    assert why(raw(), TopicKind.ORDERS) is RejectReason.WRONG_TOPIC
    review = {
        "type": "review",
        "event_id": "r",
        "event_time": NOW,
        "visitor_id": "v",
        "order_id": "o",
        "rating": 6,
    }
    assert why(json.dumps(review).encode()) is RejectReason.OUT_OF_RANGE


def test_every_event_type_names_its_topic_and_partition_key() -> None:
    # A key "a|b" is a when present, else b: every named field exists, and the last one
    # (the fallback) is required, so every valid event has a key.
    for name, spec in EVENT_TYPES.items():
        names = spec.key.split("|")
        assert all(n in spec.fields for n in names), name
        assert spec.fields[names[-1]].required, name


_OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]
)


def _reference_ms(text: str) -> int | None:
    """What ``datetime.fromisoformat`` makes of a time with an offset (None: refused)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if moment.tzinfo is None else round(moment.timestamp() * 1000)


@settings(max_examples=500)
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),  # noqa: DTZ001
    _OFFSETS,
    st.booleans(),
)
def test_the_per_second_iso_parser_equals_fromisoformat(
    moment: datetime, offset: timezone, zulu: bool
) -> None:
    text = moment.replace(tzinfo=offset).isoformat(timespec="milliseconds")
    if zulu and offset is UTC:
        text = text.replace("+00:00", "Z")
    assert iso_ms(text) == _reference_ms(text) is not None
    assert parse_time(text, "event_time") == _reference_ms(text)


@settings(max_examples=500)
@given(st.text(alphabet="0123456789-T:.+Z ٣x", min_size=20, max_size=30))
def test_the_per_second_iso_parser_answers_only_what_fromisoformat_accepts(text: str) -> None:
    fast = iso_ms(text)
    assert fast is None or fast == _reference_ms(text)


def test_the_per_second_iso_parser_by_hand() -> None:
    assert iso_ms("2026-11-11T20:00:01.250+08:00") == 1_794_398_401_250
    assert iso_ms("2026-11-11T12:00:01.250Z") == 1_794_398_401_250
    assert iso_ms("2026-11-11T20:00:60.250+08:00") is None  # no leap second
    assert iso_ms("2026-11-11T20:00:01.2٣0+08:00") is None  # ASCII digits only
    assert iso_ms("2026-11-11T20:00:01.250") is None  # no offset: fromisoformat decides
    # Other forms fromisoformat reads (or refuses) its own way are left to it:
    for text in (
        "2026-11-27T09:59:59.9999+0800",  # four fraction digits: rounded, not cut
        "20261127T015959.123.456Z",
        "2024-01-01T000000.1.123Z",
    ):
        assert iso_ms(text) is None
    assert parse_time("2026-11-27T09:59:59.9999+0800", "t") == 1_795_744_800_000
    for text in ("20261127T015959.123.456Z", "2024-01-01T000000.1.123Z"):
        with pytest.raises(ValueError, match="not ISO 8601"):
            parse_time(text, "t")

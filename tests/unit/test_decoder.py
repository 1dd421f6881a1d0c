"""The compiled decoder gives exactly the reference decoder's result, for any input."""

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams.ingest.decoder
from loadtest.shop_generator import generate_shop
from streams.ingest.decoder import Decoder
from streams.ingest.events import EVENT_TYPES, Event, Rejection, RejectReason, TopicKind, decode
from tests.unit.test_events import LIMITS, NOW, json_values

DECODER = Decoder(LIMITS)
TOPICS = list(TopicKind)


def _examples() -> dict[str, dict[str, object]]:
    """One generated, valid document of every event type."""
    traffic = generate_shop(3, NOW - 3 * 3_600_000, 3600, 2000)
    found: dict[str, dict[str, object]] = {}
    for messages in traffic.messages.values():
        for _, value in messages:
            doc = json.loads(value)
            found.setdefault(doc["type"], doc)
    return found


EXAMPLES = _examples()


def both(raw: bytes, topic: TopicKind) -> Event | Rejection:
    reference = decode(raw, LIMITS, NOW, topic)
    assert DECODER.decode(raw, NOW, topic) == reference
    return reference


def test_every_event_type_has_a_generated_example() -> None:
    assert set(EXAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
def test_valid_examples_take_the_fast_path_and_match(
    type_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []

    def counting(raw: bytes, *args: object) -> Event | Rejection:
        calls.append(raw)
        return decode(raw, *args)  # type: ignore[arg-type]

    raw = json.dumps(EXAMPLES[type_name]).encode()
    topic = EVENT_TYPES[type_name].topic
    expected = decode(raw, LIMITS, NOW, topic)
    assert isinstance(expected, Event)
    monkeypatch.setattr(streams.ingest.decoder, "decode", counting)
    assert DECODER.decode(raw, NOW, topic) == expected
    assert calls == [], "a valid event fell back to the reference decoder"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"schema": 1.0}, None),  # accepted by the reference (1.0 == 1)
        ({"schema": True}, RejectReason.UNSUPPORTED_SCHEMA),
        ({"event_time": True}, RejectReason.WRONG_TYPE),
        ({"event_time": NOW + 3_600_000}, RejectReason.TOO_FAR_IN_FUTURE),
        ({"event_time": NOW - 2 * 86_400_000}, RejectReason.TOO_OLD),
        ({"event_time": "2026-11-27T02:00:00"}, RejectReason.BAD_TIMESTAMP),
        ({"event_time": "2026-11-27T02:00:00.123456789+00:00"}, None),
        ({"page": "é" * 512}, None),
        ({"page": "é" * 513}, RejectReason.WRONG_TYPE),
        ({"visitor_id": ""}, RejectReason.WRONG_TYPE),
        ({"channel": ""}, None),
        ({"campaign": ""}, None),
        ({"channel": "tiktok"}, None),
        ({"extra": [[[[]]]]}, None),
        ({"type": "order_paid"}, RejectReason.WRONG_TOPIC),
    ],
)
def test_edge_cases_match(changes: dict[str, object], expected: RejectReason | None) -> None:
    doc = {**EXAMPLES["page_view"], "event_time": NOW - 1000, **changes}
    result = both(json.dumps(doc).encode(), TopicKind.CLICKSTREAM)
    if expected is None:
        assert isinstance(result, Event)
    else:
        assert isinstance(result, Rejection) and result.reason is expected


# The deployment's default size limit (1 MiB), so that deep nesting reaches both parsers.
WIDE_LIMITS = dataclasses.replace(LIMITS, max_event_bytes=1_048_576)
WIDE_DECODER = Decoder(WIDE_LIMITS)


def _with_extra(extra: str) -> bytes:
    doc = json.dumps({**EXAMPLES["page_view"], "event_time": NOW - 1000})
    return (doc[:-1] + ', "extra": ' + extra + "}").encode()


# orjson, under the reference decoder, refuses 1024 levels; msgspec stops at the interpreter's
# recursion limit: 1000 Python frames on 3.11, the C limit on 3.12 (1500) and 3.13 (10000).
@pytest.mark.parametrize("depth", [100, 900, 1023, 1024, 1100, 1500, 5000, 9000, 10_000, 100_000])
def test_deep_nesting_in_an_unknown_field_matches(depth: int) -> None:
    raw = _with_extra("[" * depth + "]" * depth)
    both(raw, TopicKind.CLICKSTREAM)
    reference = decode(raw, WIDE_LIMITS, NOW, TopicKind.CLICKSTREAM)
    assert WIDE_DECODER.decode(raw, NOW, TopicKind.CLICKSTREAM) == reference
    if depth < 1024:
        assert isinstance(reference, Event)
    else:  # bad input gets a clear reason, on every Python version
        assert isinstance(reference, Rejection)
        assert reference.reason is RejectReason.MALFORMED_JSON
        assert "recursion depth exceeded" in reference.detail


def test_many_shallow_brackets_match() -> None:
    raw = _with_extra("[" + ", ".join(["[{}]"] * 600) + "]")  # 1201 openers, 3 levels
    assert isinstance(both(raw, TopicKind.CLICKSTREAM), Event)


def test_duplicate_keys_and_money_as_integer_or_float_match() -> None:
    doc = json.dumps({**EXAMPLES["order_paid"], "event_time": NOW - 1000, "amount": 12})
    result = both(doc.encode(), TopicKind.ORDERS)
    assert isinstance(result, Event) and result.number("amount") == 1200
    for amount in ("0.285", "19.99", "100000000", "100000000.01", "-0.0", "1e3"):
        body = doc.replace('"amount": 12', f'"amount": {amount}')
        both(body.encode(), TopicKind.ORDERS)
    both(doc.replace('"amount": 12', '"amount": 12, "amount": -1').encode(), TopicKind.ORDERS)


@given(st.binary(max_size=2048), st.sampled_from(TOPICS))
def test_arbitrary_bytes_match(data: bytes, topic: TopicKind) -> None:
    both(data, topic)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=400)
@given(
    st.sampled_from(sorted(EVENT_TYPES)),
    st.sampled_from(TOPICS),
    st.data(),
    st.dictionaries(st.text(max_size=8), json_values, max_size=2),
)
def test_mutated_documents_match(
    type_name: str, topic: TopicKind, data: st.DataObject, extra: dict[str, object]
) -> None:
    doc = {**EXAMPLES[type_name], "event_time": NOW - 1000}
    names = sorted(doc)
    dropped = data.draw(st.sets(st.sampled_from(names), max_size=3))
    replaced = data.draw(st.dictionaries(st.sampled_from(names), json_values, max_size=3))
    mutated = {k: v for k, v in doc.items() if k not in dropped} | replaced | extra
    both(json.dumps(mutated).encode(), topic)


def test_decode_all_keeps_order() -> None:
    raws = [json.dumps({**EXAMPLES["page_view"], "event_time": NOW - 1000}).encode(), b"{"]
    out = DECODER.decode_all(raws, NOW, TopicKind.CLICKSTREAM)
    assert isinstance(out[0], Event) and isinstance(out[1], Rejection)


def test_epoch_seconds_are_named_in_the_rejection() -> None:
    seconds = json.dumps({**EXAMPLES["page_view"], "event_time": NOW // 1000 - 60}).encode()
    rejected = both(seconds, TopicKind.CLICKSTREAM)
    assert isinstance(rejected, Rejection) and rejected.reason is RejectReason.TOO_OLD
    assert "looks like epoch seconds: send milliseconds" in rejected.detail
    old_ms = json.dumps({**EXAMPLES["page_view"], "event_time": NOW - 2 * 86_400_000}).encode()
    rejected = both(old_ms, TopicKind.CLICKSTREAM)
    assert isinstance(rejected, Rejection) and "seconds" not in rejected.detail


def test_one_bad_order_line_rejects_the_order_and_names_the_line() -> None:
    paid = EXAMPLES["order_paid"]
    items = [dict(item) for item in paid["items"]] * 3  # type: ignore[attr-defined]
    items[2] = {**items[2], "quantity": -1}
    raw = json.dumps({**paid, "event_time": NOW - 1000, "items": items}).encode()
    rejected = both(raw, TopicKind.ORDERS)
    assert isinstance(rejected, Rejection)
    assert rejected.reason is RejectReason.OUT_OF_RANGE
    assert "items[2].quantity" in rejected.detail

from pathlib import Path

from streams.ingest.events import EVENT_TYPES
from streams.views.docgen import json_schema, write_or_check

ROOT = Path(__file__).resolve().parents[2]


def test_committed_docs_match_the_code() -> None:
    assert write_or_check(ROOT / "docs", write=False) == [], "run `kpi docs`"


def test_json_schema_requires_exactly_the_required_fields() -> None:
    schema = json_schema("order_paid")
    required = schema["required"]
    assert isinstance(required, list)
    assert {"type", "event_id", "event_time", "visitor_id", "order_id", "channel", "amount"} == set(
        required
    )
    assert set(schema["properties"]) >= set(EVENT_TYPES["order_paid"].fields)  # type: ignore[arg-type]

import json

from dashboards.boards import DASHBOARDS, WAR_ROOM_UID
from dashboards.build import JSON_DIR, panel_queries, render


def test_committed_json_equals_a_fresh_build() -> None:
    for uid in DASHBOARDS:
        committed = (JSON_DIR / f"{uid}.json").read_text(encoding="utf-8")
        assert committed == render(uid), f"run `python -m dashboards.build` ({uid})"


def test_war_room_is_dark_refreshes_every_5_seconds_and_links_to_kiosk_mode() -> None:
    board = json.loads(render(WAR_ROOM_UID))
    assert (board["style"], board["refresh"]) == ("dark", "5s")
    assert any(link["url"].endswith("?kiosk") for link in board["links"])
    # No scrolling on a 1080p TV: every panel fits in 24 grid rows (about 30 px each).
    assert max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in board["panels"]) <= 25
    stats = [p for p in board["panels"] if p["type"] == "stat"]
    assert len(stats) >= 8
    assert all(p["fieldConfig"]["defaults"]["thresholds"]["steps"] for p in stats)


def test_every_panel_has_queries_with_distinct_ref_ids() -> None:
    for uid in DASHBOARDS:
        board = json.loads(render(uid))
        for panel in board["panels"]:
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), (uid, panel["title"])
        assert list(panel_queries(board))

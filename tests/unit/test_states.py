"""The scene state machine, tested as a table, and the records it moves."""

from __future__ import annotations

import pytest

from videogen.models import Scene, SceneState, VendorJob
from videogen.record import FIELDS, SceneRecord, decode, encode, initial_fields, new_record
from videogen.states import TABLE, Event, lua_table, next_state, sources

P, R, G = SceneState.PENDING, SceneState.ROUTED, SceneState.RUNNING
S, F, C = SceneState.SUCCEEDED, SceneState.FAILED, SceneState.CANCELLED

# Every allowed move, written out by hand: the table in the code must be exactly this.
EXPECTED = {
    (P, Event.ROUTE): R,
    (R, Event.START): G,
    (G, Event.START): G,  # a resumed job (its worker died)
    (G, Event.SUCCEED): S,
    (R, Event.RETRY): R,
    (G, Event.RETRY): R,
    (R, Event.REROUTE): P,
    (G, Event.REROUTE): P,
    (P, Event.FAIL): F,
    (R, Event.FAIL): F,
    (G, Event.FAIL): F,
    (P, Event.CANCEL): C,
    (R, Event.CANCEL): C,
    (G, Event.CANCEL): C,
    (P, Event.ADOPT): S,  # an orphan's video, wherever the scene is now
    (R, Event.ADOPT): S,
    (G, Event.ADOPT): S,
    (F, Event.RESUBMIT): P,  # a person's retry
    (C, Event.RESUBMIT): P,
    (P, Event.REUSE): S,  # a cached video, or its leader's: never routed, never paid
}


@pytest.mark.parametrize("state", list(SceneState))
@pytest.mark.parametrize("event", list(Event))
def test_every_state_and_event(state, event):
    assert next_state(state, event) == EXPECTED.get((state, event))


def test_the_table_is_exactly_the_expected_one():
    assert dict(TABLE) == EXPECTED


def test_sources_and_the_lua_literal_come_from_the_table():
    assert sources(Event.START) == {R, G} and sources(Event.SUCCEED) == {G}
    lua = lua_table()
    assert all(f'["{s.value}:{e.value}"]="{to.value}"' in lua for (s, e), to in TABLE.items())
    assert lua.count("=") == len(TABLE)


def test_a_record_round_trips_through_its_hash():
    spec = Scene(prompt="a lighthouse", duration=4, seed=7)
    record = new_record("j-000", "j", 0, spec, 100.0)
    stored = {k: str(v) for k, v in initial_fields(record).items()}
    assert "backend" not in stored and "tried" not in stored  # defaults are not written
    assert decode(stored) == record
    changes = {
        "backend": "runway",
        "tried": ["runway"],
        "vendor_job": VendorJob(backend="runway", job_id="abc"),
        "started_at": 101.5,
        "error": None,
    }
    stored.update({k: str(v) for k, v in encode(changes).items()})
    again = decode(stored)
    assert again.backend == "runway" and again.tried == ("runway",)
    assert again.vendor_job == VendorJob(backend="runway", job_id="abc")
    assert again.started_at == 101.5 and again.error is None  # "" reads as unset


def test_writing_a_field_the_record_does_not_have_is_an_error():
    with pytest.raises(KeyError, match="bakend"):
        encode({"bakend": "runway"})
    assert "state" in FIELDS and "lease" in FIELDS


def test_the_public_view_leaves_out_unset_fields_and_the_lease_token():
    record = SceneRecord(
        id="j-000", job_id="j", index=0, spec=Scene(prompt="x"), state=G,
        created_at=1.0, updated_at=2.0, lease="secret-token", tried=("svd",),
    )  # fmt: skip
    view = record.as_dict()
    assert view["state"] == "running" and view["tried"] == ["svd"]
    assert "lease" not in view and "backend" not in view
    assert view["spec"] == {"prompt": "x", "duration": 5.0}

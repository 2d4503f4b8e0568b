"""store.base.json_dumps, the store's JSON serializer: the very text json.dumps writes, the same
errors for what JSON cannot hold; and JSON columns round-trip through both stores with it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from maintd.store.base import json_dumps
from maintd.store.db import Store
from maintd.store.models import EventRow
from tests.conftest import T0

VALUES: list[Any] = [
    {},
    {"time": 0.000412, "status_code": 200.0},
    {"from": None, "to": "ok", "run_id": "ab12"},
    {"nested": [1, 2.5, None, True, False, {"k": 'é ✓ "quoted"\n'}]},
    {1: "int key", 2.5: "float key", None: "null key", False: "bool key"},
    [float("nan"), float("inf"), -float("inf"), 1e300, -0.0],
    "a string",
    12,
    None,
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_it_writes_what_json_dumps_writes(value: Any) -> None:
    assert json_dumps(value) == json.dumps(value)


def test_what_json_cannot_hold_is_refused_as_json_dumps_refuses_it() -> None:
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference detected"):
        json_dumps(circular)
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        json_dumps({"x": object()})


def test_json_columns_round_trip_through_the_store(store: Store) -> None:
    payloads = [{"time": 0.25, "tags": ["a", "b"], "none": None}, {}, {"é": "✓"}]
    with store.write() as session:
        for payload in payloads:
            session.add(EventRow(at=T0, kind="test.json", subject="s", actor="a", payload=payload))
    with store.read() as session:
        got = list(session.scalars(select(EventRow.payload).order_by(EventRow.id)))
    assert got == payloads

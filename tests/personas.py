"""The people in the API tests, by role, and the fixtures that give each a token and a client.

A test module that uses these defines an ``engine`` fixture and imports the fixtures by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.auth import Role, create_token
from maintd.engine import Engine

# A viewer (vera), a responder (rob), a team lead (tess), a manager (mia) and an admin (ada).
PERSONAS = {
    "vera": Role.viewer,
    "rob": Role.responder,
    "tess": Role.team_lead,
    "mia": Role.manager,
    "ada": Role.admin,
}


@pytest.fixture
def tokens(engine: Engine) -> dict[str, str]:
    with engine.store.write() as s:
        return {
            name: create_token(s, name=name, role=role, now=engine.clock.now(), actor="test")
            for name, role in PERSONAS.items()
        }


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(AppContext(engine.store, engine.clock, engine.metrics, engine))
    with TestClient(app) as c:
        yield c


def as_(tokens: dict[str, str], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}

"""Fixtures for the PostgreSQL tests: loomworks/postgres containers (with their volumes and
networks) that the kit removes after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.containers import Postgres


@pytest.fixture
def postgres(docker_client, postgres_image: str) -> Iterator[Postgres]:
    made = Postgres(docker_client, image=postgres_image)
    yield made
    made.cleanup()

"""Shared fixtures: spaces are cached per session because their samplers memoise reachability."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from search_spaces.spaces import Space, get_space
from tests._postgres import PostgresServer, start_postgres

INPUTS = {"image3x32x32": ("einspace", (3, 32, 32)), "image1x8x8": ("einspace", (1, 8, 8)),
          "sequence1x40": ("einspace-1d", (1, 40)), "nb201": ("nb201", (3, 16, 16)),
          "nb-macro": ("nb-macro", (3, 16, 16)), "hnb201": ("hnb201", (3, 16, 16)),
          "hnb201-shared": ("hnb201-shared", (3, 16, 16)), "hnb201-einspace": ("hnb201-einspace", (3, 8, 8)),
          "seq-templates": ("seq-templates", (1, 40))}


@pytest.fixture(scope="session")
def spaces() -> dict[str, Space]:
    return {label: get_space(name, shape) for label, (name, shape) in INPUTS.items()}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server of this test session (tests/_postgres.py); skips when none can start."""
    server = start_postgres()
    if server is None:
        pytest.skip("no PostgreSQL server can be started here (needs Debian's postgresql, root and psycopg)")
    try:
        yield server
    finally:
        server.remove()

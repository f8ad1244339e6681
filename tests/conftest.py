"""Fixtures shared by every test directory: the private Dovecot and fresh users on it."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.dovecot import DovecotServer, MailUser

# The test command runs the same hypothesis examples every time, so a red run can be rerun and
# main does not turn red by the luck of a draw. `--hypothesis-profile explore` searches new
# random examples (and remembers failures in .hypothesis/): run it when changing a parser.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile("repeatable")

_user_numbers = itertools.count(1)
_SERVER_FIXTURES = {"dovecot", "fresh_user"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Whatever directory a test lives in, needing the server makes it an integration test,
    # so `-m "not integration"` runs without Dovecot.
    for item in items:
        if _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One private Dovecot for the whole run; a server that does not start fails the run."""
    server = DovecotServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_user(dovecot: DovecotServer) -> MailUser:
    """A new user with no mail and a 50M quota, unique to this test."""
    name = f"u{next(_user_numbers)}-{secrets.token_hex(3)}"
    password = dovecot.add_user(name, quota="50M")
    return MailUser(name=name, password=password, home=dovecot.mail_home(name))

"""The release record and dotenv config, pure."""

import datetime as dt

import pytest

from pipeline.errors import ConfigError
from pipeline.gitops.records import parse_env_file, release_id


def test_release_id_names_commit_and_sorts_in_time_order():
    early = release_id(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "abcdef1234")
    late = release_id(dt.datetime(2026, 1, 2, 3, 4, 6, tzinfo=dt.UTC), "0000000")
    assert early == "r20260102-030405-abcdef1"
    assert early < late


def test_env_file_parsing():
    text = "# comment\n\nMESSAGE=Hello, world\nDB_URL='postgres://x'\nEMPTY=\n"
    assert parse_env_file(text, "dev.env") == {"MESSAGE": "Hello, world", "DB_URL": "postgres://x", "EMPTY": ""}


@pytest.mark.parametrize("text, message", [
    ("MESSAGE\n", "dev.env:1: expected KEY=value"),
    ("A=1\nA=2\n", "dev.env:2: A is set twice"),
])
def test_env_file_errors_name_line(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_env_file(text, "dev.env")

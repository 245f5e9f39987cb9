"""The story repository (tests/report/story.py), told once per test session and shared by the
report tests; a test that changes it works on a copy (story_copy)."""

from __future__ import annotations

import pytest

from tests.report.story import Story, tell


@pytest.fixture(scope="session")
def story(tmp_path_factory) -> Story:
    with pytest.MonkeyPatch.context() as mp:  # the dated commits and the secret only while it is told
        told = tell(tmp_path_factory.mktemp("story"), mp)
    yield told
    told.ctx.close()

"""yamlsafe remembers texts it parsed: each caller still gets documents of its own, with their
line numbers, and an error is raised again, naming that caller's source."""

from __future__ import annotations

import pytest

from pipeline import yamlsafe
from pipeline.errors import ConfigError

TEXT = "a: &x [1, {b: 2}]\nc: *x\nd: !!set {p, q}\ne: 2024-01-01\nf: !!binary aGk=\n"


def test_a_text_parsed_again_gives_equal_documents_of_its_own():
    first = yamlsafe.loads_all(TEXT, "one.yaml")
    again = yamlsafe.loads_all(TEXT, "two.yaml")
    assert again == first and again[0] is not first[0]
    assert again[0].key_lines == {"a": 1, "c": 2, "d": 3, "e": 4, "f": 5} and again[0]["a"][1].line == 1
    assert again[0]["a"] is again[0]["c"]  # an alias stays one object, as PyYAML builds it
    first[0]["a"][1]["b"] = 99
    first[0]["d"].add("r")
    first[0].key_lines["a"] = 7
    fresh = yamlsafe.loads_all(TEXT)[0]
    assert fresh["a"][1]["b"] == 2 and fresh["d"] == {"p", "q"} and fresh.key_lines["a"] == 1


def test_an_error_is_raised_each_time_naming_the_source():
    for source in ("one.yaml", "two.yaml"):
        with pytest.raises(ConfigError, match=f"^{source}:2: duplicate key 'a' \\(first at line 1\\)$"):
            yamlsafe.loads_all("a: 1\na: 2\n", source)

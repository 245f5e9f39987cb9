"""Names, rules and trailers from one place, pure."""

import pytest

from pipeline import names


@pytest.mark.parametrize("name, ok", [("hellok8s", True), ("a" * 40, True), ("a" * 41, False), ("My_App", False),
                                      ("-x", False), ("x-", False), ("shop-api", True)])
def test_name_rule(name, ok):
    assert names.valid_name(name) is ok


def test_secret_variable():
    assert names.secret_variable("shop-api", "DB_PASSWORD") == "SHIP_SECRET_SHOP_API_DB_PASSWORD"


def test_commit_message_and_trailers_round_trip():
    message = names.commit_message("release(dev): hellok8s r1", "release", {"Release": "r1", "Replaced": None})
    assert message == "release(dev): hellok8s r1\n\nShip-Action: release\nShip-Release: r1\n"
    assert names.trailers(message) == {"Action": "release", "Release": "r1"}


def test_canary_names():
    assert names.canary_name("hellok8s") == "hellok8s-canary" and names.is_canary("hellok8s-canary")

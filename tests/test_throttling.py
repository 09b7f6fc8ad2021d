"""Throttling: failed logins per address and per account, registrations per address.

The apps here throttle with small limits (``THROTTLING`` in tests/conftest.py:
3 failed logins a minute per address, 5 an hour per account, 3 registrations an
hour per address); the rest of the suite runs with throttling off.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
import redis
import requests
from flask.testing import FlaskClient

from tests import databases
from tests.apps import make_app
from tests.factories import PASSWORD, register

WRONG = "not-the-password"


def login(
    client: FlaskClient, email: str, password: str = WRONG, forwarded_for: str | None = None
) -> Any:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post(
        "/api/users/login", json={"user": {"email": email, "password": password}}, headers=headers
    )


def fail_logins(client: FlaskClient, email: str, times: int, **kwargs: Any) -> list[int]:
    return [login(client, email, **kwargs).status_code for _ in range(times)]


@pytest.fixture
def client(throttled_app) -> FlaskClient:
    """A client of an app throttling with the small limits, behind no proxy."""
    return throttled_app().test_client()


@pytest.fixture
def proxied(throttled_app) -> FlaskClient:
    """A throttling app's client behind one trusted proxy: ``X-Forwarded-For`` names the client."""
    return throttled_app(TRUSTED_PROXY_COUNT="1").test_client()


def test_failed_logins_past_the_address_limit_answer_429_with_retry_after(client):
    user = register(client)

    statuses = fail_logins(client, user["email"], 3)
    refused = login(client, user["email"])

    assert statuses == [401, 401, 401]
    assert refused.status_code == 429
    assert refused.get_json() == {
        "errors": {
            "login attempts": [
                "are too many from this address; "
                f"try again in {refused.headers['Retry-After']} seconds"
            ]
        }
    }
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_a_throttled_address_is_refused_even_with_the_right_password(client):
    user = register(client)
    fail_logins(client, user["email"], 3)

    response = login(client, user["email"], PASSWORD)

    assert response.status_code == 429


def test_successful_logins_do_not_count_as_failures(client):
    user = register(client)

    successes = [login(client, user["email"], PASSWORD).status_code for _ in range(5)]
    failures = fail_logins(client, user["email"], 3)

    assert successes == [200] * 5
    assert failures == [401, 401, 401]


def test_malformed_logins_do_not_count_as_failures(client):
    user = register(client)

    malformed = [client.post("/api/users/login", json={"user": {}}).status_code for _ in range(4)]

    assert malformed == [422] * 4
    assert login(client, user["email"], PASSWORD).status_code == 200


def test_failed_logins_for_one_account_are_limited_whichever_address_sends_them(proxied):
    user = register(proxied)

    statuses = [
        login(proxied, user["email"], forwarded_for=f"203.0.113.{n}").status_code
        for n in range(1, 7)
    ]
    refused = login(proxied, user["email"], PASSWORD, forwarded_for="198.51.100.1")

    assert statuses == [401] * 5 + [429]
    assert refused.status_code == 429
    assert refused.get_json()["errors"]["login attempts"][0].startswith(
        "are too many for this account; try again in "
    )
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600


def test_the_account_limit_reads_the_email_as_people_read_it(proxied):
    user = register(proxied, email="kay@example.com")
    fullwidth = "\uff4b\uff41\uff59@example.com"  # "kay" in fullwidth letters
    spellings = ["KAY@example.com", " kay@example.com ", "Kay@Example.Com", fullwidth]

    for n, email in enumerate(spellings * 2, start=1):
        login(proxied, email, forwarded_for=f"203.0.113.{n}")

    response = login(proxied, user["email"], PASSWORD, forwarded_for="198.51.100.1")
    assert response.status_code == 429


def test_an_unknown_email_is_throttled_like_a_known_one(proxied):
    statuses = [
        login(proxied, "nobody@example.com", forwarded_for=f"203.0.113.{n}").status_code
        for n in range(1, 7)
    ]

    assert statuses == [401] * 5 + [429]


def test_one_address_throttled_does_not_stop_the_owner_signing_in_from_another(proxied):
    user = register(proxied)
    assert fail_logins(proxied, user["email"], 4, forwarded_for="203.0.113.9")[-1] == 429

    response = login(proxied, user["email"], PASSWORD, forwarded_for="198.51.100.1")

    assert response.status_code == 200


def test_x_forwarded_for_is_ignored_when_no_proxy_is_trusted(client):
    user = register(client)

    statuses = [
        login(client, user["email"], forwarded_for=f"203.0.113.{n}").status_code
        for n in range(1, 5)
    ]

    assert statuses == [401, 401, 401, 429]


def test_behind_one_proxy_only_the_address_it_recorded_counts(proxied):
    user = register(proxied)

    # What the client sends comes first; the proxy appends the address it saw.
    statuses = [
        login(proxied, user["email"], forwarded_for=f"10.0.0.{n}, 203.0.113.7").status_code
        for n in range(1, 5)
    ]

    assert statuses == [401, 401, 401, 429]


def test_an_ipv6_client_counts_by_its_64_block(proxied):
    user = register(proxied)

    statuses = [
        login(proxied, user["email"], forwarded_for=f"2001:db8:0:1::{n}").status_code
        for n in range(1, 5)
    ]

    assert statuses == [401, 401, 401, 429]


@pytest.mark.parametrize(
    "recorded",
    ["203.0.113.7:{port}", "[2001:db8:0:1::7]:{port}", "[2001:db8:0:1::7]"],
    ids=["ipv4 with a port", "ipv6 in brackets with a port", "ipv6 in brackets"],
)
def test_a_port_or_brackets_the_proxy_writes_do_not_make_a_new_client(proxied, recorded):
    """Some proxies record ``address:port``: each connection must not count as a new client."""
    user = register(proxied)

    statuses = [
        login(proxied, user["email"], forwarded_for=recorded.format(port=50000 + n)).status_code
        for n in range(1, 5)
    ]

    assert statuses == [401, 401, 401, 429]


def test_ipv4_clients_seen_through_an_ipv6_socket_count_one_by_one(proxied):
    user = register(proxied)
    fail_logins(proxied, user["email"], 3, forwarded_for="::ffff:203.0.113.1")

    response = login(proxied, user["email"], PASSWORD, forwarded_for="::ffff:203.0.113.2")

    assert response.status_code == 200


def test_registrations_past_the_address_limit_answer_429_refused_ones_counted(client):
    taken = register(client)
    duplicate = {"username": "someone", "email": taken["email"], "password": PASSWORD}
    refused_one = client.post("/api/users", json={"user": duplicate})
    register(client)

    response = client.post(
        "/api/users",
        json={"user": {"username": "late", "email": "late@example.com", "password": PASSWORD}},
    )

    assert refused_one.status_code == 422
    assert response.status_code == 429
    assert response.get_json() == {
        "errors": {
            "registrations": [
                "are too many from this address; "
                f"try again in {math.ceil(int(response.headers['Retry-After']) / 60)} minutes"
            ]
        }
    }
    assert 1 <= int(response.headers["Retry-After"]) <= 3600


def test_registrations_from_another_address_are_not_held_back(proxied):
    for _ in range(3):
        proxied.post(
            "/api/users",
            json={"user": {"username": "x", "email": "not-an-email", "password": PASSWORD}},
            headers={"X-Forwarded-For": "203.0.113.1"},
        )

    response = proxied.post(
        "/api/users",
        json={"user": {"username": "anna", "email": "anna@example.com", "password": PASSWORD}},
        headers={"X-Forwarded-For": "198.51.100.1"},
    )

    assert response.status_code == 201


def test_ratelimit_enabled_off_turns_throttling_off(throttled_app):
    client = throttled_app(RATELIMIT_ENABLED="off").test_client()
    users = [register(client) for _ in range(5)]  # each asserts its 201

    statuses = fail_logins(client, users[0]["email"], 8)

    assert statuses == [401] * 8


def test_two_apps_on_one_redis_share_their_counts(throttled_app, redis_url, rate_limit_prefix):
    settings = {"RATELIMIT_STORAGE_URI": redis_url, "RATELIMIT_KEY_PREFIX": rate_limit_prefix}
    one = throttled_app(**settings).test_client()
    other = throttled_app(**settings).test_client()
    user = register(one)

    statuses = [
        login(one, user["email"]).status_code,
        login(other, user["email"]).status_code,
        login(one, user["email"]).status_code,
        login(other, user["email"]).status_code,
    ]

    assert statuses == [401, 401, 401, 429]


def test_apps_counting_in_memory_do_not_share_their_counts(throttled_app):
    """The contrast to the test above: ``memory://`` counts per process."""
    one = throttled_app().test_client()
    other = throttled_app().test_client()
    user = register(one)
    fail_logins(one, user["email"], 3)

    assert login(other, user["email"]).status_code == 401


def test_an_unreachable_redis_throttles_per_process_and_never_answers_500(
    throttled_app, closed_port, caplog
):
    app = throttled_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port}/0")
    client = app.test_client()
    user = register(client)

    with caplog.at_level(logging.WARNING, logger="app.web.throttling"):
        statuses = fail_logins(client, user["email"], 4)

    assert statuses == [401, 401, 401, 429]
    assert "falling back to in-memory storage" in caplog.text


def test_production_warns_when_counts_stay_in_one_process(database_url, caplog):
    with caplog.at_level(logging.WARNING, logger="app.web.throttling"):
        make_app(
            database_url,
            APP_ENV="production",
            RATELIMIT_ENABLED="on",
            RATELIMIT_STORAGE_URI="memory://",
        )

    assert "RATELIMIT_STORAGE_URI is memory://" in caplog.text


def test_gunicorn_worker_processes_share_counts_through_redis(
    throttled_served_app, rate_limit_prefix
):
    user = throttled_served_app.register("served")
    url = throttled_served_app.base_url + "/api/users/login"
    body = {"user": {"email": user["email"], "password": WRONG}}

    # A new connection per request: gunicorn's two worker processes take turns at random.
    statuses = [requests.post(url, json=body, timeout=30).status_code for _ in range(12)]

    assert statuses == [401, 401, 401] + [429] * 9
    stored = redis.Redis.from_url(databases.REDIS_URL)
    try:
        assert list(stored.scan_iter(match=f"*/{rate_limit_prefix}/address:*"))
    finally:
        stored.close()

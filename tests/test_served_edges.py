"""HTTP at the edges, over a raw socket to gunicorn (gunicorn.conf.py, as deployed).

What only a real server shows: bodies cut short or badly chunked, uploads past
the limit, request lines and headers past gunicorn's own limits. Each answer
is in the error envelope, and a refused request writes nothing.
"""

from __future__ import annotations

import json
import socket

import pytest

from app.web.http_edges import MAX_URL_LENGTH
from tests.factories import PASSWORD
from tests.serving import Answer, exchange, http_request, port_of, read_answer

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def port(served_module) -> int:
    return port_of(served_module)


def registration(username: str) -> bytes:
    user = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    return json.dumps({"user": user}).encode()


def profile_status(port: int, username: str) -> int:
    return exchange(port, http_request("GET", f"/api/profiles/{username}")).status


def envelope(answer: Answer) -> dict:
    assert answer.headers["content-type"] == "application/json", answer.body[:200]
    document = json.loads(answer.body)
    assert set(document) == {"errors"}
    return document["errors"]


def test_served_registration_works(port):
    answer = exchange(port, http_request("POST", "/api/users", registration("ok"), JSON))

    assert answer.status == 201
    assert profile_status(port, "ok") == 200


def test_a_body_shorter_than_its_content_length_is_400_and_creates_no_user(port):
    body = registration("halfclosed")
    headers = {**JSON, "Content-Length": str(len(body) + 20)}

    # The whole JSON document arrives, then the client half-closes.
    answer = exchange(port, http_request("POST", "/api/users", body, headers))

    assert answer.status == 400
    assert list(envelope(answer)) == ["body"]
    assert profile_status(port, "halfclosed") == 404


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # not a hexadecimal size
        b"-5\r\n{}\r\n0\r\n\r\n",  # a negative size
        b"5\r\n{}\r\n0\r\n\r\n",  # a chunk shorter than its size
        b"%x\r\n%s",  # a valid chunk, then the client stops: no last chunk
    ],
    ids=["bad size", "negative size", "short chunk", "no last chunk"],
)
def test_a_malformed_chunked_body_is_400_and_creates_no_user(port, chunks):
    body = registration("chunked")
    if b"%" in chunks:
        chunks = chunks.replace(b"%x", b"%x" % len(body)).replace(b"%s", body + b"\r\n")
    headers = {**JSON, "Transfer-Encoding": "chunked"}

    answer = exchange(port, http_request("POST", "/api/users", headers=headers) + chunks)

    assert answer.status == 400
    assert list(envelope(answer)) == ["body"]
    assert profile_status(port, "chunked") == 404


def test_a_well_formed_chunked_body_is_read(port):
    body = registration("wellchunked")
    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    headers = {**JSON, "Transfer-Encoding": "chunked"}

    answer = exchange(port, http_request("POST", "/api/users", headers=headers) + chunks)

    assert answer.status == 201


def _upload(port: int, head: bytes, body_parts: int, part: bytes, tail: bytes = b"") -> Answer:
    """Send all of a large body (as a client does before it reads), then read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(head)
        for _ in range(body_parts):
            connection.sendall(part)
        connection.sendall(tail)
        return read_answer(connection)


def test_a_30_mb_body_gets_a_413_the_client_can_read(port):
    part = b"x" * (1024 * 1024)
    head = http_request(
        "POST", "/api/users", headers={**JSON, "Content-Length": str(30 * len(part))}
    )

    answer = _upload(port, head, 30, part)

    assert answer.status == 413
    assert list(envelope(answer)) == ["body"]


def test_a_30_mb_chunked_body_gets_a_413_the_client_can_read(port):
    part = b"100000\r\n" + b"x" * 0x100000 + b"\r\n"
    head = http_request("POST", "/api/users", headers={**JSON, "Transfer-Encoding": "chunked"})

    answer = _upload(port, head, 30, part, tail=b"0\r\n\r\n")

    assert answer.status == 413
    assert list(envelope(answer)) == ["body"]


def test_json_nested_too_deeply_is_400(port):
    answer = exchange(port, http_request("POST", "/api/users", b"[" * 100_000, JSON))

    assert answer.status == 400
    assert envelope(answer) == {"body": ["is nested too deeply"]}


@pytest.mark.parametrize(
    "length",
    [MAX_URL_LENGTH + 1, 8190, 20_000],
    ids=["past the app's limit", "at gunicorn's limit", "far past gunicorn's limit"],
)
def test_a_url_over_the_documented_length_is_414_in_the_envelope(port, length):
    path = "/api/articles?tag="
    path += "x" * (length - len(path))

    answer = exchange(port, http_request("GET", path))

    assert answer.status == 414
    assert envelope(answer) == {"url": [f"is too long (maximum is {MAX_URL_LENGTH} bytes)"]}


def test_a_header_past_gunicorns_limit_is_431_in_the_envelope(port):
    answer = exchange(port, http_request("GET", "/api/articles", headers={"X-Big": "x" * 20_000}))

    assert answer.status == 431
    assert envelope(answer) == {"headers": ["are too large"]}


def test_a_malformed_request_line_is_400_in_the_envelope(port):
    answer = exchange(port, b"NOT A REQUEST\r\n\r\n")

    assert answer.status == 400
    assert list(envelope(answer)) == ["body"]

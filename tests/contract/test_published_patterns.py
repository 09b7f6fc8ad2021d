"""The server accepts exactly what openapi.json's patterns accept, read as ECMA-262.

JSON Schema patterns are ECMA-262 regular expressions. Each published pattern
is run by Node.js (a real ECMA-262 engine) with and without the ``u`` flag,
over text chosen to find where engines disagree: line breaks at the end
(Python's ``$`` matches before one), other scripts' letters and digits
(Python's ``\\w`` and ``\\d`` take them, ECMA-262's do not), decomposed
letters, format characters, characters outside the Basic Multilingual Plane,
and one character of every Unicode general category. The server must accept a
text exactly when the pattern does.

Skips when node is missing, unless CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import unicodedata

import pytest

from app.web.openapi import openapi_document
from tests.databases import IN_CI
from tests.factories import PASSWORD, auth, register

SPEC = openapi_document()
SCHEMAS = SPEC["components"]["schemas"]
USERNAME_PATTERN = SCHEMAS["NewUser"]["properties"]["username"]["pattern"]
TITLE_PATTERN = SCHEMAS["NewArticle"]["properties"]["title"]["pattern"]
TAG_PATTERN = SCHEMAS["NewArticle"]["properties"]["tagList"]["items"]["pattern"]


def _one_of_each_category() -> list[str]:
    """The first code point of every general category (surrogates aside)."""
    seen: dict[str, str] = {}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category not in seen and category != "Cs":
            seen[category] = chr(code)
    return list(seen.values())


SAMPLES = [
    "jake",
    "Kay",
    "jake\n",
    "jake\r\n",
    "\njake",
    "jake\u2028",
    ".",
    "..",
    "...",
    ".\n",
    "a.b-c_d",
    unicodedata.normalize("NFD", "José"),
    "\uff41dmin",
    "\u0661\u0662\u0663",  # ARABIC-INDIC digits
    "\u00b2",  # SUPERSCRIPT TWO (a number, not a decimal digit)
    "\u0301",  # a lone combining accent
    "a\u200bb",
    "\u200b",
    "\ufeff",
    "\u00a0",
    "\u3000",
    "\U0001d400",  # MATHEMATICAL BOLD CAPITAL A
    "\U0001f600",  # an emoji
    "\U000e0001",  # LANGUAGE TAG (a format character outside the BMP)
    "a b",
    " a ",
    "a/b",
    "a%2eb",
    *_one_of_each_category(),
]


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        reason = "node is not installed (it builds the frontend: see docs/contract.md)"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


ECMA_SCRIPT = """
const {pattern, samples} = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const plain = new RegExp(pattern), unicode = new RegExp(pattern, 'u');
console.log(JSON.stringify(samples.map(s => [plain.test(s), unicode.test(s)])));
"""


def ecma_accepts(node: str, pattern: str) -> list[bool]:
    """What ECMA-262 says of each sample; the test fails if the two flags disagree."""
    result = subprocess.run(
        [node, "-e", ECMA_SCRIPT],
        input=json.dumps({"pattern": pattern, "samples": SAMPLES}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    verdicts = json.loads(result.stdout)
    disagree = [
        s for s, (plain, unicode) in zip(SAMPLES, verdicts, strict=True) if plain != unicode
    ]
    assert not disagree, f"the u flag changes the verdict for {disagree!r}"
    return [plain for plain, _ in verdicts]


def username_accepted(client, username: str, n: int) -> bool:
    user = {"username": username, "email": f"sample{n}@example.com", "password": PASSWORD}
    response = client.post("/api/users", json={"user": user})
    if response.status_code == 201:
        return True
    messages = response.get_json()["errors"].get("username", [])
    return messages in ([], ["has already been taken"])


def test_usernames_the_server_accepts_are_those_the_pattern_accepts(client, node):
    expected = ecma_accepts(node, USERNAME_PATTERN)

    actual = [username_accepted(client, sample, n) for n, sample in enumerate(SAMPLES)]

    differ = [s for s, e, a in zip(SAMPLES, expected, actual, strict=True) if e != a]
    assert not differ, f"server and pattern disagree on {differ!r}"


def test_non_blank_text_the_server_accepts_is_what_the_pattern_accepts(client, node):
    assert TAG_PATTERN == TITLE_PATTERN
    expected = [e for e in ecma_accepts(node, TITLE_PATTERN)]
    author = register(client)

    actual = []
    for sample in SAMPLES:
        article = {"title": sample, "description": "d", "body": "b", "tagList": [sample]}
        response = client.post("/api/articles", json={"article": article}, headers=auth(author))
        errors = response.get_json().get("errors", {})
        assert ("title" in errors) == ("tagList" in errors), (sample, errors)
        actual.append(response.status_code == 201)

    differ = [s for s, e, a in zip(SAMPLES, expected, actual, strict=True) if e != a]
    assert not differ, f"server and pattern disagree on {differ!r}"

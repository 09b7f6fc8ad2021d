"""Usernames and emails are unique as people read them, and found the same way.

The rule (docs/api.md, app/text.py): NFKC-normalise, then compare
case-insensitively (``str.casefold``), for uniqueness and for every look-up;
what the user typed is what is shown. A username must also survive as a URL
path segment, so ``.`` and ``..`` (which URL parsers remove) are refused.
"""

import unicodedata

import pytest

from tests.factories import PASSWORD, auth, create_article, follow, register

NFC_JOSE = unicodedata.normalize("NFC", "José")
NFD_JOSE = unicodedata.normalize("NFD", "José")
FULLWIDTH_ADMIN = "\uff41dmin"  # FULLWIDTH LATIN SMALL LETTER A, then "dmin"


def new_user(username: str, email: str | None = None) -> dict:
    email = email or f"{len(username)}-{abs(hash(username))}@example.com"
    return {"user": {"username": username, "email": email, "password": PASSWORD}}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Kay", "kay"),
        ("kay", "KAY"),
        ("admin", FULLWIDTH_ADMIN),
        (NFC_JOSE, NFD_JOSE),
        ("Straße", "STRASSE"),
        ("ﬁle", "file"),  # the ligature U+FB01
    ],
    ids=["case", "upper case", "fullwidth", "nfc-nfd", "sharp s", "ligature"],
)
def test_a_username_that_reads_the_same_is_taken(client, first, second):
    register(client, username=first)

    response = client.post("/api/users", json=new_user(second))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"username": ["has already been taken"]}}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("kay@example.com", "KAY@EXAMPLE.COM"),
        ("kay@example.com", "\uff4bay@example.com"),  # fullwidth k
        ("kay@example.com", "kay@\uff45xample.com"),  # fullwidth e in the domain
        ("josex@example.com", "jose\uff58@example.com"),
        ("kay@ex\u00e1mple.com", "kay@exa\u0301mple.com"),  # NFC and NFD domains
    ],
    ids=["case", "fullwidth local part", "fullwidth domain", "fullwidth x", "nfc-nfd domain"],
)
def test_an_email_that_reads_the_same_is_taken(client, first, second):
    register(client, email=first)

    response = client.post("/api/users", json=new_user("someone", email=second))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"email": ["has already been taken"]}}


def test_the_username_is_shown_as_typed(client):
    user = register(client, username=NFD_JOSE)

    assert user["username"] == NFD_JOSE
    profile = client.get(f"/api/profiles/{NFD_JOSE}").get_json()["profile"]
    assert profile["username"] == NFD_JOSE


@pytest.mark.parametrize(
    "spelling", ["kay", "KAY", "\uff2b\uff41\uff59"], ids=["lower", "upper", "fullwidth"]
)
def test_a_profile_is_found_by_any_spelling_that_reads_the_same(client, spelling):
    register(client, username="Kay")

    response = client.get(f"/api/profiles/{spelling}")

    assert response.status_code == 200
    assert response.get_json()["profile"]["username"] == "Kay"


def test_the_nfc_spelling_finds_the_profile_registered_in_nfd(client):
    register(client, username=NFD_JOSE)

    response = client.get(f"/api/profiles/{NFC_JOSE}")

    assert response.status_code == 200
    assert response.get_json()["profile"]["username"] == NFD_JOSE


def test_follow_finds_the_user_by_another_spelling(client, jake):
    register(client, username="Kay")

    follow(client, jake, "KAY")

    profile = client.get("/api/profiles/kay", headers=auth(jake)).get_json()["profile"]
    assert profile["following"] is True


@pytest.mark.parametrize("parameter", ["author", "favorited"])
def test_article_filters_find_the_user_by_another_spelling(client, parameter):
    kay = register(client, username="Kay")
    article = create_article(client, kay)
    client.post(f"/api/articles/{article['slug']}/favorite", headers=auth(kay))

    response = client.get("/api/articles", query_string={parameter: "\uff4b\uff41\uff59"})

    assert [a["slug"] for a in response.get_json()["articles"]] == [article["slug"]]
    assert response.get_json()["articlesCount"] == 1


@pytest.mark.parametrize("email", ["KAY@example.com", "\uff4bay@example.com", " kay@example.com "])
def test_login_finds_the_account_by_an_email_that_reads_the_same(client, email):
    register(client, email="kay@example.com")

    response = client.post(
        "/api/users/login", json={"user": {"email": email, "password": PASSWORD}}
    )

    assert response.status_code == 200
    assert response.get_json()["user"]["email"] == "kay@example.com"


def test_renaming_to_another_users_name_in_other_letters_is_taken(client, jake):
    register(client, username="Kay")

    response = client.put("/api/user", json={"user": {"username": "\uff4bay"}}, headers=auth(jake))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"username": ["has already been taken"]}}


def test_a_user_may_respell_their_own_name(client):
    kay = register(client, username="kay")

    response = client.put("/api/user", json={"user": {"username": "Kay"}}, headers=auth(kay))

    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == "Kay"


def test_a_decomposed_name_is_letters(client):
    response = client.post("/api/users", json=new_user(NFD_JOSE))

    assert response.status_code == 201


@pytest.mark.parametrize("username", ["jake\n", "jake\r\n", "\njake", "ja\nke"])
def test_a_username_with_a_line_break_is_refused(client, username):
    response = client.post("/api/users", json=new_user(username))

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["username"]


@pytest.mark.parametrize("username", [".", ".."])
def test_a_dot_segment_is_not_a_username(client, username):
    response = client.post("/api/users", json=new_user(username))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"username": ["cannot be '.' or '..'"]}}


@pytest.mark.parametrize("username", ["...", ".jake", "jake.", "j.a.k.e", "-_-"])
def test_dots_beside_other_characters_are_a_username(client, username):
    response = client.post("/api/users", json=new_user(username))

    assert response.status_code == 201
    assert client.get(f"/api/profiles/{username}").status_code == 200


@pytest.mark.parametrize(
    "username",
    [
        "a/b",
        "a%2eb",
        "a?b",
        "a#b",
        "a b",
        "a\u00a0b",
        "a\u200bb",
        "jake\U0001d400",
        "alice\u3164",  # HANGUL FILLER: a letter that shows nothing
        "alice\u115f",  # HANGUL CHOSEONG FILLER
        "alice\u034f",  # COMBINING GRAPHEME JOINER: a mark that shows nothing
        "alice\u17b4",  # KHMER VOWEL INHERENT AQ
        "\u0301",  # a combining mark with nothing to sit on
        "\u0301jake",
    ],
    ids=[
        "slash",
        "percent",
        "question",
        "hash",
        "space",
        "nbsp",
        "zero width",
        "astral",
        "hangul filler",
        "choseong filler",
        "grapheme joiner",
        "khmer inherent vowel",
        "mark alone",
        "leading mark",
    ],
)
def test_what_is_not_letters_digits_or_dot_dash_underscore_is_refused(client, username):
    response = client.post("/api/users", json=new_user(username))

    assert response.status_code == 422
    assert response.get_json() == {
        "errors": {"username": ["can only contain letters, digits, '_', '.' and '-'"]}
    }


def test_a_name_that_nfkc_lengthens_fits(client):
    # U+FDFA is one letter that NFKC spells as 18 characters: the key is longer
    # than the name, and still unique-indexable on PostgreSQL.
    username = "\ufdfa" * 64

    response = client.post("/api/users", json=new_user(username))

    assert response.status_code == 201
    assert client.post("/api/users", json=new_user(username)).status_code == 422


def test_the_keys_are_stored_beside_the_names(client, sql):
    register(client, username="Kay", email="KAY@Example.com")

    assert sql("SELECT username, username_key, email, email_key FROM users") == [
        ("Kay", "kay", "kay@example.com", "kay@example.com")
    ]


def test_an_email_whose_stored_form_outgrows_the_limit_is_422(client):
    # "İ" (U+0130) lower-cases to two characters: 130 of them store 260.
    email = "\u0130" * 130 + "@example.com"

    response = client.post("/api/users", json=new_user("dotted", email=email))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"email": ["is too long (maximum is 254)"]}}

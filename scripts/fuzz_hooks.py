"""schemathesis hooks for ``make fuzz``: a signed-in fuzzing user, whatever the campaign does.

Fuzzing ``PUT /api/user`` changes the password and ``DELETE /api/user/sessions``
signs out everywhere; either ends the token in use (docs/api.md, "Tokens and
sessions"), and every later request would be a 401. schemathesis asks this
provider for a token at the start, every five minutes, and after any 401
(its ``retry_on`` default): the first is the one scripts/fuzz.sh registered
(``FUZZ_TOKEN``, whose user owns the seeded rows), each later one a newly
registered fuzzing user's.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import requests
import schemathesis


@schemathesis.auth()
class SignedIn:
    def __init__(self) -> None:
        self.first: str | None = os.environ.get("FUZZ_TOKEN")

    def get(self, case: Any, context: Any) -> str:
        if self.first is not None:
            token, self.first = self.first, None
            return token
        name = f"fuzzer_{secrets.token_hex(6)}"
        user = {"username": name, "email": f"{name}@example.com", "password": "fuzzing-password"}
        response = requests.post(
            f"{os.environ['THROWAWAY_URL']}/api/users", json={"user": user}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["user"]["token"])

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Token {data}"}

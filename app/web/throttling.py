"""Throttling: failed logins per account and per address, registrations per address.

The policy (docs/configuration.md, "Throttling", says why each number):

- **Failed logins per address** (``LOGIN_RATE_LIMIT_PER_ADDRESS``, default
  ``10 per minute``): tight, because one address guessing is the common attack
  (OWASP Authentication Cheat Sheet, "Protect Against Automated Attacks").
- **Failed logins per account** (``LOGIN_RATE_LIMIT_PER_ACCOUNT``, default
  ``100 per hour``): generous, because anyone can spend an account's allowance
  (from as many addresses as they like) and its owner is then refused too.
  NIST SP 800-63B §5.2.2 caps consecutive failures on one account at 100; with
  no way here to unlock an account (no password reset), a permanent lock would
  let anyone lock anyone out, so the cap holds for any hour instead.
- **Registrations per address** (``REGISTRATION_RATE_LIMIT``, default ``20 per
  hour``), every attempt counted: a 422 "has already been taken" tells whether
  an email has an account, so refused registrations count as much as accepted ones.

Only a login answered 401 counts as a failure (Flask-Limiter's ``deduct_when``);
a successful one, or one refused as malformed (400, 415, 422) or throttled
(429), does not. Every limit is checked before the view runs, so a throttled
login is refused without its password being checked, even a correct one. The
windows move (Flask-Limiter's ``moving-window`` strategy: no burst of twice the
limit across a window's edge). Checking and counting are two steps: attempts
in flight at the same moment are all let through before any is counted, so a
burst can overshoot a limit by at most the number of requests served at once
(replicas times ``WEB_CONCURRENCY`` times ``GUNICORN_THREADS``).

A throttled request answers 429 in the error envelope with ``Retry-After`` in
seconds (RFC 6585 §4, RFC 9110 §10.2.3)::

    {"errors": {"login attempts": ["are too many from this address; try again in 42 seconds"]}}

The account is the email as people read it (``app.text.identity_key``, as
``app.users.service.authenticate`` looks it up), kept in storage only as an
HMAC under ``SECRET_KEY``: Redis never holds an email. The address is
``request.remote_addr``: the socket's peer, or the address the trusted proxies
recorded in ``X-Forwarded-For`` (``TRUSTED_PROXY_COUNT``, Werkzeug's
``ProxyFix``), never a header the client chose. An IPv6 client counts by its
/64, the block one subscriber is given (RFC 6177), since it can use any address in it.

Counts live where ``RATELIMIT_STORAGE_URI`` says: ``memory://`` counts per
worker process (development; a production app warns at startup), ``redis://``
shares them between every worker and replica. When Redis cannot be reached the
limits hold per process, in memory, until it answers again (Flask-Limiter's
in-memory fallback, retried with a growing back-off); nothing answers 500.
``RATELIMIT_ENABLED=off`` turns all of it off.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial, wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.response import Response as BaseResponse

from app.errors import GENERIC_MESSAGES, ApiError, render_http_exception
from app.text import identity_key

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
_RULES = "throttling_rules"
# Redis: how long a command may wait before the in-memory fallback takes over (seconds).
REDIS_TIMEOUT_SECONDS = 1
# Retry-After when the window cannot be read (the storage failed after the refusal).
_FALLBACK_WAIT_SECONDS = 60


@dataclass(frozen=True)
class Rule:
    """One limit: the setting holding it, what it counts by, and what a refusal says."""

    setting: str
    key: Callable[[], str]
    field: str
    refusal: str  # "are too many …"; the wait is added
    failures_only: bool


def client_address() -> str:
    """The client's address as counted: IPv4 as is, IPv6 by its /64.

    An IPv4 client seen through an IPv6 socket (``::ffff:192.0.2.1``) is its IPv4
    address, not one /64 shared by every IPv4 client.
    """
    address = request.remote_addr or "unknown"
    try:
        parsed = ipaddress.ip_address(_host_part(address))
    except ValueError:
        return f"address:{address}"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return f"address:{parsed.ipv4_mapped}"
        return f"address:{ipaddress.ip_network(f'{parsed}/64', strict=False)}"
    return f"address:{parsed}"


_WITH_PORT = re.compile(r"^\[(?P<v6>[^\]]+)\](?::\d+)?$|^(?P<v4>[0-9.]+):\d+$")


def _host_part(address: str) -> str:
    """The address without the port or brackets some proxies write in ``X-Forwarded-For``.

    ``192.0.2.1:51234`` and ``[2001:db8::1]:443`` would otherwise count every
    connection as a new client.
    """
    found = _WITH_PORT.match(address.strip())
    if found is None:
        return address.strip()
    return found.group("v6") or found.group("v4")


def login_account() -> str:
    """The account a login names: an HMAC of the email's identity key.

    Read from the raw body: the limit is checked before the view parses it. A
    body without an email (a 4xx, never a 401) counts under ``account:none``.
    """
    payload = request.get_json(silent=True)
    user = payload.get("user") if isinstance(payload, dict) else None
    email = user.get("email") if isinstance(user, dict) else None
    if not isinstance(email, str) or not email.strip():
        return "account:none"
    secret = str(current_app.config["SECRET_KEY"]).encode()
    key = identity_key(email.strip()).encode("utf-8", "surrogatepass")
    return "account:" + hmac.new(secret, key, hashlib.sha256).hexdigest()[:32]


LOGIN_FAILURES_PER_ADDRESS = Rule(
    "LOGIN_RATE_LIMIT_PER_ADDRESS",
    client_address,
    "login attempts",
    "are too many from this address",
    failures_only=True,
)
LOGIN_FAILURES_PER_ACCOUNT = Rule(
    "LOGIN_RATE_LIMIT_PER_ACCOUNT",
    login_account,
    "login attempts",
    "are too many for this account",
    failures_only=True,
)
REGISTRATIONS_PER_ADDRESS = Rule(
    "REGISTRATION_RATE_LIMIT",
    client_address,
    "registrations",
    "are too many from this address",
    failures_only=False,
)


def throttled(*rules: Rule) -> Callable[[F], F]:
    """Mark a ``MethodView`` method as limited by ``rules`` (applied by :func:`init_app`).

    Put it above the method's other decorators. The limits are bound per app
    (each app has its own ``Limiter``, storage and settings), so the marker only
    records them.
    """

    def mark(method: F) -> F:
        setattr(method, _RULES, rules)
        return method

    return mark


def init_app(app: Flask) -> None:
    """Trust the configured proxies, then limit every view method marked ``throttled``.

    Call after the blueprints are registered: the limits wrap the registered views.
    """
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=0, x_host=0, x_port=0, x_prefix=0
        )
    if not app.config["RATELIMIT_ENABLED"]:
        return
    storage_uri = app.config["RATELIMIT_STORAGE_URI"]
    if storage_uri.startswith("memory://") and app.config["APP_ENV"] == "production":
        log.warning(
            "RATELIMIT_STORAGE_URI is memory://: each worker process counts on its own, "
            "so every limit is multiplied by the processes serving; use redis:// "
            "(docs/configuration.md, Throttling)"
        )
    timeouts: dict[str, str | int] = dict.fromkeys(
        ("socket_connect_timeout", "socket_timeout"), REDIS_TIMEOUT_SECONDS
    )
    limiter = Limiter(
        key_func=client_address,
        strategy="moving-window",
        storage_options=timeouts if storage_uri.startswith("redis") else {},
        swallow_errors=True,  # a storage error while counting is logged, never a 500
        in_memory_fallback_enabled=True,  # …and the limits hold per process meanwhile
    )
    limiter.logger = log  # its warnings (storage lost, recovered) in the app's log lines
    hooks_before = {name: list(getattr(app, name).get(None, ())) for name in _HOOKS}
    limiter.init_app(app)
    app.extensions["throttling"] = limiter
    limited: set[str] = set()
    for endpoint, registered in list(app.view_functions.items()):
        view: Callable[..., Any] = registered
        view_class = getattr(view, "view_class", None)
        for method in sorted(getattr(view_class, "methods", None) or ()):
            for rule in getattr(getattr(view_class, method.lower()), _RULES, ()):
                view = limiter.limit(
                    app.config[rule.setting],
                    key_func=rule.key,
                    methods=[method],
                    deduct_when=_failed if rule.failures_only else None,
                    on_breach=partial(_refusal, rule),
                )(view)
                limited.add(endpoint)
        app.view_functions[endpoint] = view
    # Flask-Limiter hooks every request, for default and application-wide limits
    # (this app has none): its hooks run on the limited endpoints only, sparing
    # every other request their cost (tens of microseconds).
    for name, returns_argument in _HOOKS.items():
        hooks = getattr(app, name).setdefault(None, [])
        hooks[:] = [
            hook
            if hook in hooks_before[name]
            else _confined(hook, frozenset(limited), returns_argument)
            for hook in hooks
        ]
    app.register_error_handler(RateLimitExceeded, _too_many_requests)


# Flask's per-request hook lists, and whether a hook returns what it is given (a response).
_HOOKS = {
    "before_request_funcs": False,
    "after_request_funcs": True,
    "teardown_request_funcs": False,
}


def _confined(
    hook: Callable[..., Any], endpoints: frozenset[str], returns_argument: bool
) -> Callable[..., Any]:
    """``hook``, run only for requests routed to one of ``endpoints``."""

    @wraps(hook)
    def confined(*args: Any) -> Any:
        if request.endpoint in endpoints:
            return hook(*args)
        return args[0] if returns_argument else None

    return confined


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _refusal(rule: Rule, limit: RequestLimit) -> Response:
    """The 429 for a breached ``limit``: the rule's message and ``Retry-After``."""
    try:
        wait = max(1, math.ceil(limit.window[0] - time.time()))  # window: (reset time, room)
    except Exception:  # the storage failed after refusing: a safe guess, not a 500
        log.warning("rate limit window unreadable; Retry-After guessed", exc_info=True)
        wait = _FALLBACK_WAIT_SECONDS
    error = ApiError(
        429,
        {rule.field: [f"{rule.refusal}; try again in {_duration(wait)}"]},
        headers={"Retry-After": str(wait)},
    )
    return render_http_exception(error)


def _too_many_requests(error: RateLimitExceeded) -> BaseResponse:
    """The response :func:`_refusal` made, else the generic 429 (``_refusal`` itself failed)."""
    if error.response is not None:
        return error.response
    headers = {"Retry-After": str(_FALLBACK_WAIT_SECONDS)}
    return render_http_exception(ApiError(429, {"body": [GENERIC_MESSAGES[429]]}, headers))


def _duration(seconds: int) -> str:
    """``42 seconds`` up to two minutes, then whole minutes, rounded up."""
    if seconds < 120:
        return f"{seconds} second" + ("" if seconds == 1 else "s")
    return f"{math.ceil(seconds / 60)} minutes"

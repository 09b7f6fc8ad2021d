"""Routes: registration, login, the current user and signing out everywhere."""

from flask.views import MethodView

from app.security import auth_required, current_user
from app.users import service
from app.users.schemas import (
    LoginUserRequestSchema,
    NewUserRequestSchema,
    UpdateUserRequestSchema,
    UserResponseSchema,
)
from app.web import conditional_writes
from app.web.api import Blueprint
from app.web.throttling import (
    LOGIN_FAILURES_PER_ACCOUNT,
    LOGIN_FAILURES_PER_ADDRESS,
    REGISTRATIONS_PER_ADDRESS,
    throttled,
)

blp = Blueprint(
    "User and Authentication",
    __name__,
    url_prefix="/api",
    description="Registration, login and the current user.",
)


@blp.route("/users/login")
class Login(MethodView):
    @throttled(LOGIN_FAILURES_PER_ADDRESS, LOGIN_FAILURES_PER_ACCOUNT)
    @blp.arguments(LoginUserRequestSchema())
    @blp.response(200, UserResponseSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @blp.doc(operationId="Login")
    def post(self, payload):
        """Log in with email and password

        Failed logins (401) are limited per client address (default: 10 a
        minute) and per account (default: 100 an hour, whichever address they
        come from); past either, every login for it answers 429 with
        `Retry-After` until the window has room, a correct password included.
        """
        credentials = payload["user"]
        user = service.authenticate(credentials["email"], credentials["password"])
        return {"user": service.user_payload(user)}


@blp.route("/users")
class Users(MethodView):
    @throttled(REGISTRATIONS_PER_ADDRESS)
    @blp.arguments(NewUserRequestSchema())
    @blp.response(201, UserResponseSchema)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @blp.doc(operationId="CreateUser")
    def post(self, payload):
        """Register a new user

        Registrations are limited per client address (default: 20 an hour, the
        refused ones counted too); past that they answer 429 with `Retry-After`.
        """
        user = service.register(**payload["user"])
        return {"user": service.user_payload(user)}


@blp.route("/user")
class CurrentUser(MethodView):
    @auth_required
    @blp.response(200, UserResponseSchema)
    @blp.doc(operationId="GetCurrentUser")
    def get(self):
        """Get the current user"""
        return {"user": service.user_payload(current_user())}

    @auth_required
    @blp.arguments(UpdateUserRequestSchema())
    @blp.response(200, UserResponseSchema)
    @blp.alt_response(412, response=conditional_writes.RESPONSE)
    @blp.doc(operationId="UpdateCurrentUser", parameters=[conditional_writes.PARAMETER_NAME])
    def put(self, payload):
        """Update the current user

        Only the fields sent are changed. An empty or blank `bio` or `image`
        (whitespace, or characters that show nothing, only) clears it.
        A new `password` ends every token issued before, on every device; the
        answer carries a new one. `If-Match`: only `*` matches here, since each
        answer carries a token minted for it, so no earlier read names the
        current representation.
        """
        user = service.update(current_user(), payload["user"])
        return {"user": service.user_payload(user)}


@blp.route("/user/sessions")
class CurrentUserSessions(MethodView):
    @auth_required
    @blp.response(204)
    @blp.doc(operationId="DeleteCurrentUserSessions")
    def delete(self):
        """Sign out everywhere

        Ends every token of the current user, the one sent included: each
        answers 401 from then on, on every device. Sign in again for a new one.
        A password change does the same, and answers with the new token.
        ---
        The user's sign-ins are a collection (``/user/sessions``) that DELETE
        empties, as DELETE on a collection does elsewhere (RFC 9110 section
        9.3.5), rather than an RPC-style ``POST /logout-everywhere``: it is
        idempotent, and 204 says there is nothing left to show. Tokens are not
        listed or ended one by one: one session key per account decides them
        all (app/tokens.py).
        """
        service.sign_out_everywhere(current_user())

"""Routes: registration, login, and the current user."""

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

blp = Blueprint(
    "User and Authentication",
    __name__,
    url_prefix="/api",
    description="Registration, login and the current user.",
)


@blp.route("/users/login")
class Login(MethodView):
    @blp.arguments(LoginUserRequestSchema)
    @blp.response(200, UserResponseSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.doc(operationId="Login")
    def post(self, payload):
        """Log in with email and password"""
        credentials = payload["user"]
        user = service.authenticate(credentials["email"], credentials["password"])
        return {"user": service.user_payload(user)}


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(NewUserRequestSchema)
    @blp.response(201, UserResponseSchema)
    @blp.doc(operationId="CreateUser")
    def post(self, payload):
        """Register a new user"""
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
    @blp.arguments(UpdateUserRequestSchema)
    @blp.response(200, UserResponseSchema)
    @blp.alt_response(412, response=conditional_writes.RESPONSE)
    @blp.doc(operationId="UpdateCurrentUser", parameters=[conditional_writes.PARAMETER_NAME])
    def put(self, payload):
        """Update the current user

        Only the fields sent are changed. An empty `bio` or `image` clears it.
        """
        user = service.update(current_user(), payload["user"])
        return {"user": service.user_payload(user)}

"""Routes: profiles and follows."""

from flask.views import MethodView

from app.profiles import service
from app.profiles.schemas import ProfileResponseSchema
from app.security import auth_optional, auth_required, current_user, viewer
from app.web.api import Blueprint

blp = Blueprint(
    "Profile", __name__, url_prefix="/api/profiles", description="Public profiles and follows."
)


@blp.route("/<username>")
class Profile(MethodView):
    @auth_optional
    @blp.response(200, ProfileResponseSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="GetProfileByUsername")
    def get(self, username):
        """Get a profile

        `following` tells whether the authenticated user follows this profile.
        """
        return {"profile": service.get_profile(username, viewer())}


@blp.route("/<username>/follow")
class Follow(MethodView):
    @auth_required
    @blp.response(200, ProfileResponseSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.doc(operationId="FollowUserByUsername")
    def post(self, username):
        """Follow a user"""
        return {"profile": service.follow(username, current_user())}

    @auth_required
    @blp.response(200, ProfileResponseSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="UnfollowUserByUsername")
    def delete(self, username):
        """Unfollow a user"""
        return {"profile": service.unfollow(username, current_user())}

"""Routes: comments on an article."""

from flask.views import MethodView

from app.comments import service
from app.comments.schemas import (
    MultipleCommentsResponseSchema,
    NewCommentRequestSchema,
    SingleCommentResponseSchema,
)
from app.security import auth_optional, auth_required, current_user, viewer
from app.web import conditional_writes
from app.web.api import Blueprint

blp = Blueprint(
    "Comments",
    __name__,
    url_prefix="/api/articles/<slug:slug>/comments",
    description="Comments on articles.",
)


@blp.route("")
class Comments(MethodView):
    @auth_optional
    @blp.response(200, MultipleCommentsResponseSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="GetArticleComments")
    def get(self, slug):
        """List an article's comments, newest first"""
        return {"comments": service.list_comments(slug, viewer())}

    @auth_required
    @blp.arguments(NewCommentRequestSchema())
    @blp.response(200, SingleCommentResponseSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="CreateArticleComment")
    def post(self, payload, slug):
        """Comment on an article"""
        return {"comment": service.add_comment(slug, current_user(), payload["comment"]["body"])}


@blp.route("/<int:id>")
class Comment(MethodView):
    @auth_required
    @blp.response(204)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response=conditional_writes.RESPONSE)
    @blp.doc(operationId="DeleteArticleComment", parameters=[conditional_writes.PARAMETER_NAME])
    def delete(self, slug, id):  # the reference spec names the parameter "id"
        """Delete a comment

        Only the comment's author may.
        """
        service.delete_comment(slug, id, current_user())

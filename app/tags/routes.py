"""Routes: tags."""

from flask.views import MethodView

from app.tags import service
from app.tags.schemas import TagsResponseSchema
from app.web.api import Blueprint

blp = Blueprint("Tags", __name__, url_prefix="/api/tags", description="Tags in use.")


@blp.route("")
class Tags(MethodView):
    @blp.response(200, TagsResponseSchema)
    @blp.doc(operationId="GetTags")
    def get(self):
        """List the tags in use, most used first"""
        return {"tags": service.popular_tags()}

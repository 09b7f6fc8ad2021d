"""Routes: articles, the feed and favorites."""

from flask.views import MethodView

from app.articles import service
from app.articles.schemas import (
    ArticleListQuerySchema,
    MultipleArticlesResponseSchema,
    NewArticleRequestSchema,
    PaginationQuerySchema,
    SingleArticleResponseSchema,
    UpdateArticleRequestSchema,
)
from app.security import auth_optional, auth_required, current_user, viewer
from app.web import conditional_writes
from app.web.api import Blueprint

blp = Blueprint(
    "Articles",
    __name__,
    url_prefix="/api/articles",
    description="Articles, the feed and favorites.",
)


@blp.route("")
class Articles(MethodView):
    @auth_optional
    @blp.arguments(ArticleListQuerySchema(), location="query")
    @blp.response(200, MultipleArticlesResponseSchema)
    @blp.doc(operationId="GetArticles")
    def get(self, query):
        """List articles, most recent first

        Filter with `tag`, `author` and `favorited` (they combine); page with
        `limit` and `offset`. `articlesCount` counts every match.
        """
        articles, count = service.list_articles(viewer(), **query)
        return {"articles": articles, "articles_count": count}

    @auth_required
    @blp.arguments(NewArticleRequestSchema())
    @blp.response(201, SingleArticleResponseSchema)
    @blp.doc(operationId="CreateArticle")
    def post(self, payload):
        """Create an article"""
        return {"article": service.create_article(current_user(), payload["article"])}


@blp.route("/feed")
class Feed(MethodView):
    @auth_required
    @blp.arguments(PaginationQuerySchema(), location="query")
    @blp.response(200, MultipleArticlesResponseSchema)
    @blp.doc(operationId="GetArticlesFeed")
    def get(self, query):
        """List articles by followed users, most recent first"""
        articles, count = service.feed(current_user(), **query)
        return {"articles": articles, "articles_count": count}


@blp.route("/<slug:slug>")
class Article(MethodView):
    @auth_optional
    @blp.response(200, SingleArticleResponseSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="GetArticle")
    def get(self, slug):
        """Get an article"""
        return {"article": service.get_article(slug, viewer())}

    @auth_required
    @blp.arguments(UpdateArticleRequestSchema())
    @blp.response(200, SingleArticleResponseSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response=conditional_writes.RESPONSE)
    @blp.doc(operationId="UpdateArticle", parameters=[conditional_writes.PARAMETER_NAME])
    def put(self, payload, slug):
        """Update an article

        Only the author may. A new title gives the article a new slug.
        """
        return {"article": service.update_article(slug, current_user(), payload["article"])}

    @auth_required
    @blp.response(204)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response=conditional_writes.RESPONSE)
    @blp.doc(operationId="DeleteArticle", parameters=[conditional_writes.PARAMETER_NAME])
    def delete(self, slug):
        """Delete an article

        Only the author may. Its comments and favorites go with it.
        """
        service.delete_article(slug, current_user())


favorites_blp = Blueprint(
    "Favorites", __name__, url_prefix="/api/articles", description="Favorite articles."
)


@favorites_blp.route("/<slug:slug>/favorite")
class Favorite(MethodView):
    @auth_required
    @favorites_blp.response(200, SingleArticleResponseSchema)
    @favorites_blp.alt_response(404, response="NOT_FOUND")
    @favorites_blp.doc(operationId="CreateArticleFavorite")
    def post(self, slug):
        """Favorite an article"""
        return {"article": service.favorite(slug, current_user())}

    @auth_required
    @favorites_blp.response(200, SingleArticleResponseSchema)
    @favorites_blp.alt_response(404, response="NOT_FOUND")
    @favorites_blp.doc(operationId="DeleteArticleFavorite")
    def delete(self, slug):
        """Unfavorite an article"""
        return {"article": service.unfavorite(slug, current_user())}

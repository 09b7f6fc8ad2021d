"""Routes: liveness (``/healthz``) and readiness (``/readyz``)."""

from flask.views import MethodView

from app.health import service
from app.health.schemas import HealthResponseSchema, ReadinessResponseSchema
from app.web.api import Blueprint

# Not database_backed: liveness touches no database; readiness documents its own 503.
blp = Blueprint(
    "Health",
    __name__,
    url_prefix="",
    description="Liveness and readiness probes.",
    database_backed=False,
)


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthResponseSchema)
    @blp.doc(operationId="GetHealth")
    def get(self):
        """Check that the process answers

        Touches no database: a load balancer can tell a live process from a dead one.
        """
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.response(200, ReadinessResponseSchema)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    @blp.doc(operationId="GetReadiness")
    def get(self):
        """Check that the database answers and its schema fits this release

        Fits: at the migrations' head, behind it by contract revisions only, or
        ahead of it with every table and column of the models present; and no
        request met a missing column or table since. Answers 503 with the
        reason in the error envelope otherwise. With read replicas, lists which
        serve reads (a replica out of rotation leaves the app ready).
        """
        ready = {"status": "ready", "revision": service.readiness()}
        serving = service.replicas_serving()
        return ready if serving is None else {**ready, "replicas": serving}

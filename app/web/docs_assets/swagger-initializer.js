// Starts Swagger UI on /docs (app/templates/swagger_ui.html). A file, not an
// inline script, so the page's Content-Security-Policy allows scripts from the
// app's own origin only. The spec's URL and OPENAPI_SWAGGER_UI_CONFIG come from
// the container's data attributes; the settings win, as in flask-smorest's page.
window.addEventListener("load", function () {
  var container = document.getElementById("swagger-ui-container");
  var config = { url: container.dataset.specUrl, dom_id: "#swagger-ui-container" };
  Object.assign(config, JSON.parse(container.dataset.config));
  window.ui = SwaggerUIBundle(config);
});

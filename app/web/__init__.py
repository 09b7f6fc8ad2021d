"""HTTP plumbing: the wire format, request handling at the edges, validators,
the response cache, request logs, the /docs page, the web app's serving and the
development server."""

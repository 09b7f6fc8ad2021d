"""gunicorn settings, from the environment: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
accesslog = None  # the application logs one structured line per request
errorlog = "-"
# Build the app once in the master so a bad configuration stops startup with
# one clear line instead of a crash loop of workers.
preload_app = True

"""Benchmarks: wrk against gunicorn serving the app, and the WSGI ceiling."""

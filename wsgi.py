"""WSGI entry point for production servers: ``gunicorn wsgi:app``."""

from phonein import create_app

app = create_app()

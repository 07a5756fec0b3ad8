"""gunicorn entry point: ``gunicorn wsgi:app`` (settings from the environment)."""

from scim_bridge.app import create_app

app = create_app()

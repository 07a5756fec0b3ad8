"""gunicorn entry point: ``gunicorn wsgi:app`` (settings from the environment).

Refuses to start without a Genesys org and credentials (DESIGN.md): a bridge that cannot reach
Genesys must fail its deployment, not serve 503s.
"""

from scim_bridge.app import create_app
from scim_bridge.config import Settings

settings = Settings.from_env()
settings.require_genesys()
app = create_app(settings)

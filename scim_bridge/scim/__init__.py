"""RFC 7643/7644 under ``/scim/v2``: Users and Groups over Genesys, as Okta and Entra send them.

Imports ``directory``, ``deprovision`` and ``audit`` (never the SDK). ``init_app`` is called once,
by ``create_app``.
"""

from scim_bridge.scim.blueprint import init_app
from scim_bridge.scim.context import ScimContext
from scim_bridge.scim.tokens import TokenStore

__all__ = ["ScimContext", "TokenStore", "init_app"]

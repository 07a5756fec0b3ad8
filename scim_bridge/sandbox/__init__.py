"""A Genesys Cloud Platform API v2 simulator served over real HTTP (see docs/sandbox.md).

``create_app(config)`` builds the Flask app; ``server.ServerThread`` serves it on loopback;
``control.SandboxControl`` drives its ``/sandbox/...`` endpoints. Imports nothing else of ours.
"""

from scim_bridge.sandbox.app import create_app
from scim_bridge.sandbox.config import Faults, SandboxConfig

__all__ = ["Faults", "SandboxConfig", "create_app"]

"""The directory: SCIM Users and Groups over Genesys, and the bridge's record of what Genesys
does not hold. Imports ``genesys`` and ``store`` only; knows nothing of HTTP."""

from scim_bridge.directory.queries import GroupQuery, UserQuery
from scim_bridge.genesys.types import Criterion

__all__ = ["Criterion", "GroupQuery", "UserQuery"]

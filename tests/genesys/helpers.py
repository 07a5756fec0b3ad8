"""Small helpers shared by the gateway tests: picking sandbox users, reading /sandbox/stats."""

from __future__ import annotations

from typing import Any

from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import CallRecord, GenesysUser


def active_users(gateway: SdkGateway, count: int = 1) -> list[GenesysUser]:
    users = list(gateway.list_users(state="active", page_size=100).items)
    assert len(users) >= count, "the seeded org has too few active users"
    return users[:count]


def served(stats: dict[str, Any], endpoint: str, status: int | None = None) -> int:
    """How many requests the sandbox answered on ``endpoint`` (``"GET /api/v2/users/<user_id>"``),
    with ``status`` when given."""
    by_status: dict[str, int] = stats["endpoints"].get(endpoint, {})
    if status is None:
        return sum(by_status.values())
    return by_status.get(str(status), 0)


class Recorder:
    """An observer keeping every CallRecord."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def __call__(self, record: CallRecord) -> None:
        self.records.append(record)

    def statuses(self, endpoint: str) -> list[int]:
        return [r.status for r in self.records if r.endpoint == endpoint]

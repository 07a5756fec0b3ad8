"""The bridge's own record of a SCIM resource: what Genesys does not hold (``directory_resources``).

externalId (kept by the bridge, RFC 7643 §3.1), the SCIM token (IdP) that owns the resource, the
name parts Genesys stores as one ``name``, and the meta timestamps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import sqlalchemy as sa

from scim_bridge.store.engine import write_transaction
from scim_bridge.store.schema import directory_resources as table
from scim_bridge.timestamps import iso

_UNSET = object()


@dataclasses.dataclass(frozen=True)
class LocalRecord:
    resource_type: str
    genesys_id: str
    created_at: str
    last_modified_at: str
    external_id: str | None = None
    owner: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    formatted_name: str | None = None
    unset_attributes: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class LocalFields:
    """What a write sets in the local record (None: clear)."""

    external_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    formatted_name: str | None = None
    unset_attributes: str | None = None  # comma-separated


def _row(row: sa.Row[tuple[object, ...]]) -> LocalRecord:
    m = row._mapping
    return LocalRecord(
        resource_type=str(m["resource_type"]),
        genesys_id=str(m["genesys_id"]),
        created_at=str(m["created_at"]),
        last_modified_at=str(m["last_modified_at"]),
        external_id=m["external_id"],
        owner=m["owner"],
        given_name=m["given_name"],
        family_name=m["family_name"],
        formatted_name=m["formatted_name"],
        unset_attributes=frozenset(filter(None, (m["unset_attributes"] or "").split(","))),
    )


class Records:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, resource_type: str, genesys_id: str) -> LocalRecord | None:
        return self.get_many(resource_type, [genesys_id]).get(genesys_id)

    def get_many(self, resource_type: str, ids: Iterable[str]) -> dict[str, LocalRecord]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table).where(
                    table.c.resource_type == resource_type, table.c.genesys_id.in_(wanted)
                )
            ).all()
        return {r._mapping["genesys_id"]: _row(r) for r in rows}

    def ids_by_external_id(self, resource_type: str, external_ids: Iterable[str]) -> list[str]:
        wanted = list(dict.fromkeys(external_ids))
        if not wanted:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.genesys_id)
                .where(table.c.resource_type == resource_type, table.c.external_id.in_(wanted))
                .order_by(table.c.genesys_id)
            ).scalars()
            return [str(r) for r in rows]

    def save(
        self,
        resource_type: str,
        genesys_id: str,
        fields: LocalFields,
        *,
        owner: str | None = None,
    ) -> LocalRecord:
        """Create or update the record; ``owner`` is set only when the record is created."""
        stamp = iso()
        values = dataclasses.asdict(fields)
        with write_transaction(self.engine) as conn:
            key = (table.c.resource_type == resource_type) & (table.c.genesys_id == genesys_id)
            existing = conn.execute(sa.select(table.c.genesys_id).where(key)).first()
            if existing is None:
                conn.execute(
                    table.insert().values(
                        resource_type=resource_type,
                        genesys_id=genesys_id,
                        owner=owner,
                        created_at=stamp,
                        last_modified_at=stamp,
                        **values,
                    )
                )
            else:
                conn.execute(table.update().where(key).values(last_modified_at=stamp, **values))
            row = conn.execute(sa.select(table).where(key)).one()
        return _row(row)

    def delete(self, resource_type: str, genesys_id: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                table.delete().where(
                    (table.c.resource_type == resource_type) & (table.c.genesys_id == genesys_id)
                )
            )

"""The bridge's own record of a SCIM resource: what Genesys does not hold (``directory_resources``).

externalId (kept by the bridge, RFC 7643 §3.1), the SCIM token (IdP) that owns the resource, the
userName (unique case-insensitively among the bridge's users), the SCIM attributes as the IdP last
wrote them (JSON, never a password), whether a create is still pending, and the meta timestamps.
Rows written before ``directory-2`` carry the name parts in their own columns instead
(``given_name``, ...); they are read, and replaced by ``attributes`` at the next write.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from scim_bridge.directory.errors import AlreadyExists
from scim_bridge.store.engine import write_transaction
from scim_bridge.store.prepared import Prepared
from scim_bridge.store.schema import directory_resources as table
from scim_bridge.store.schema import tombstones
from scim_bridge.timestamps import iso


@dataclasses.dataclass(frozen=True)
class LocalRecord:
    resource_type: str
    genesys_id: str
    created_at: str  # "" unless the bridge created the resource (RFC 7643 §3.1 meta.created)
    last_modified_at: str
    external_id: str | None = None
    owner: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    formatted_name: str | None = None
    unset_attributes: frozenset[str] = frozenset()
    user_name: str | None = None
    attributes: Mapping[str, Any] | None = None  # None: never written since directory-2
    create_pending: bool = False


@dataclasses.dataclass(frozen=True)
class LocalFields:
    """What a write sets in the local record (None: clear)."""

    external_id: str | None = None
    user_name: str | None = None
    attributes: Mapping[str, Any] | None = None
    create_pending: bool = False


def _values(fields: LocalFields) -> dict[str, Any]:
    return {
        "external_id": fields.external_id,
        "user_name": fields.user_name,
        "user_name_key": fields.user_name.lower() if fields.user_name else None,
        "attributes": (
            json.dumps(fields.attributes, ensure_ascii=False, separators=(",", ":"))
            if fields.attributes is not None
            else None
        ),
        "create_pending": fields.create_pending or None,
    }


# The hot path's lookups (one key each: a GET by id, a ``userName eq`` filter): store/prepared.py.
_ONE = Prepared(
    sa.select(table).where(
        table.c.resource_type == sa.bindparam("resource_type"),
        table.c.genesys_id == sa.bindparam("genesys_id"),
    )
)
_ID_BY_USER_NAME = Prepared(
    sa.select(table.c.genesys_id).where(
        table.c.resource_type == sa.bindparam("resource_type"),
        table.c.user_name_key == sa.bindparam("user_name_key"),
    )
)
_TOMBSTONED = Prepared(
    sa.select(tombstones.c.user_id).where(tombstones.c.user_id == sa.bindparam("user_id"))
)
_OWNERS = Prepared(
    sa.select(table.c.owner)
    .where(table.c.resource_type == sa.bindparam("resource_type"))
    .distinct()
)


def _row(m: Mapping[str, Any] | sa.RowMapping) -> LocalRecord:
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
        user_name=m["user_name"],
        attributes=json.loads(m["attributes"]) if m["attributes"] else None,
        create_pending=bool(m["create_pending"]),
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
        if len(wanted) == 1:
            found = _ONE.rows(self.engine, resource_type=resource_type, genesys_id=wanted[0])
            return {str(m["genesys_id"]): _row(m) for m in found}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table).where(
                    table.c.resource_type == resource_type, table.c.genesys_id.in_(wanted)
                )
            ).all()
        return {r._mapping["genesys_id"]: _row(r._mapping) for r in rows}

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
        created: bool = False,
    ) -> LocalRecord:
        """Create or update the record; ``owner`` is set only when the record is created, and
        ``created_at`` only when the bridge just created the resource itself (``created``)."""
        stamp = iso()
        values = _values(fields)
        try:
            return self._save(
                resource_type, genesys_id, values, (stamp if created else "", stamp), owner
            )
        except sa.exc.IntegrityError as e:
            # Only the userName index can refuse (the key is looked up first): a concurrent
            # writer took the same userName.
            raise AlreadyExists(
                f"Another user already has userName {fields.user_name!r} (RFC 7643 §4.1.1)."
            ) from e

    def _save(
        self,
        resource_type: str,
        genesys_id: str,
        values: dict[str, Any],
        stamps: tuple[str, str],
        owner: str | None,
    ) -> LocalRecord:
        created, stamp = stamps
        with write_transaction(self.engine) as conn:
            key = (table.c.resource_type == resource_type) & (table.c.genesys_id == genesys_id)
            existing = conn.execute(sa.select(table.c.genesys_id).where(key)).first()
            if existing is None:
                conn.execute(
                    table.insert().values(
                        resource_type=resource_type,
                        genesys_id=genesys_id,
                        owner=owner,
                        created_at=created,
                        last_modified_at=stamp,
                        **values,
                    )
                )
            else:
                conn.execute(table.update().where(key).values(last_modified_at=stamp, **values))
            row = conn.execute(sa.select(table).where(key)).one()
        return _row(row._mapping)

    def by_user_name(self, resource_type: str, user_name: str) -> LocalRecord | None:
        """The record holding ``user_name`` (case-insensitively), if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(table).where(
                    table.c.resource_type == resource_type,
                    table.c.user_name_key == user_name.lower(),
                )
            ).first()
        return _row(row._mapping) if row is not None else None

    def ids_by_user_name(self, resource_type: str, user_names: Iterable[str]) -> list[str]:
        wanted = list(dict.fromkeys(u.lower() for u in user_names))
        if not wanted:
            return []
        if len(wanted) == 1:
            found = _ID_BY_USER_NAME.rows(
                self.engine, resource_type=resource_type, user_name_key=wanted[0]
            )
            return sorted(str(m["genesys_id"]) for m in found)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.genesys_id)
                .where(table.c.resource_type == resource_type, table.c.user_name_key.in_(wanted))
                .order_by(table.c.genesys_id)
            ).scalars()
            return [str(r) for r in rows]

    def tombstoned(self, genesys_ids: Iterable[str]) -> set[str]:
        """Which of these users the bridge deleted (it wrote their tombstone): Genesys's search
        may still show them as they were for a while (eventually consistent, 2.4)."""
        wanted = list(dict.fromkeys(genesys_ids))
        if not wanted:
            return set()
        if len(wanted) == 1:
            return {str(m["user_id"]) for m in _TOMBSTONED.rows(self.engine, user_id=wanted[0])}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tombstones.c.user_id).where(tombstones.c.user_id.in_(wanted))
            ).scalars()
            return {str(r) for r in rows}

    def release_user_name(self, resource_type: str, genesys_id: str) -> None:
        """Forget the userName of a record whose Genesys user is gone (deleted)."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                table.update()
                .where(
                    (table.c.resource_type == resource_type) & (table.c.genesys_id == genesys_id)
                )
                .values(user_name=None, user_name_key=None, create_pending=None)
            )

    def owners(self, resource_type: str) -> set[str | None]:
        return {m["owner"] for m in _OWNERS.rows(self.engine, resource_type=resource_type)}

    def claim(self, resource_type: str, genesys_id: str, owner: str) -> None:
        """Set ``owner`` where the record has none (creating the record if the bridge never
        wrote one); an owned record keeps its owner."""
        stamp = iso()
        with write_transaction(self.engine) as conn:
            key = (table.c.resource_type == resource_type) & (table.c.genesys_id == genesys_id)
            done = conn.execute(
                table.update().where(key & table.c.owner.is_(None)).values(owner=owner)
            )
            if (
                done.rowcount == 0
                and conn.execute(sa.select(table.c.owner).where(key)).first() is None
            ):
                _insert_found(conn, resource_type, genesys_id, stamp, owner=owner)

    def touch(self, resource_type: str, genesys_id: str) -> None:
        """Stamp ``lastModified`` for a write that changes nothing the record holds (the user's
        state: a deactivation or reactivation), creating the record if the bridge never wrote
        one."""
        stamp = iso()
        with write_transaction(self.engine) as conn:
            key = (table.c.resource_type == resource_type) & (table.c.genesys_id == genesys_id)
            done = conn.execute(table.update().where(key).values(last_modified_at=stamp))
            if done.rowcount == 0:
                _insert_found(conn, resource_type, genesys_id, stamp)

    def delete(self, resource_type: str, genesys_id: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                table.delete().where(
                    (table.c.resource_type == resource_type) & (table.c.genesys_id == genesys_id)
                )
            )


def _insert_found(
    conn: sa.Connection,
    resource_type: str,
    genesys_id: str,
    stamp: str,
    *,
    owner: str | None = None,
) -> None:
    """The first record of a resource the bridge found in Genesys rather than created: no
    ``created_at`` (unknown, RFC 7643 §3.1)."""
    conn.execute(
        table.insert().values(
            resource_type=resource_type,
            genesys_id=genesys_id,
            owner=owner,
            created_at="",
            last_modified_at=stamp,
        )
    )

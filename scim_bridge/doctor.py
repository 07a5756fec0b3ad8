"""``scim-bridge doctor``: check a real org's configuration before go-live.

Credentials, region, and each Genesys permission the bridge needs (genesys-api.md 5.5), each by a
harmless call: reads, or writes aimed at an id that does not exist (Genesys checks permissions
before it looks the target up, so a 404 means "allowed" and a 403 names what is missing), or a
create with an e-mail that is already taken (409 ``general.conflict``, genesys-api.md 2.5).
Nothing in the org changes. Each failure is printed with what to do about it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from scim_bridge.config import ConfigError, Settings
from scim_bridge.genesys.api import Gateway
from scim_bridge.genesys.errors import (
    AuthenticationFailed,
    Conflict,
    GenesysError,
    NotFound,
    PermissionDenied,
)
from scim_bridge.genesys.types import Criterion, HistoryQuery, Proficiency, RoleGrant, UserFields

# A well-formed id that no org holds: writes aimed at it touch nothing.
PROBE_ID = "00000000-0000-4000-8000-000000000000"
ROLE_FIX = (
    "give the OAuth client (Admin > Integrations > OAuth > the client > Roles) a role holding "
    "{perms}; client-credentials tokens get their rights from roles, not scopes (genesys-api.md 1.1)"
)


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str | None = None
    permissions: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class _Probe:
    name: str
    permissions: tuple[str, ...]
    call: Callable[[], object]
    # Errors that mean "allowed" (the call was refused for another reason than permission).
    allowed: tuple[type[GenesysError], ...] = ()


def deadline() -> float:
    """A fresh 30-second deadline for each call."""
    return time.monotonic() + 30


def _edit_and_move(gateway: Gateway) -> None:
    """A profile PATCH, then a division move (PYDOCS: "Requires no permissions"; the sandbox
    asks for the user-edit ones, the stricter reading), both aimed at an id no org holds."""
    with contextlib.suppress(NotFound):
        gateway.update_user(PROBE_ID, UserFields(title="doctor"), version=1, deadline=deadline())
    gateway.move_to_division(PROBE_ID, PROBE_ID, deadline=deadline())


def _probes(
    gateway: Gateway, sample_user: tuple[str, str] | None, sample_group: str | None = None
) -> list[_Probe]:
    """Every probe, in the order printed. Creating users and reading queue memberships need a
    sample user (a taken e-mail, an existing id), creating groups a taken group name."""
    search, *others = _user_probes(gateway)
    sampled = _sample_user_probes(gateway, *sample_user) if sample_user is not None else []
    grouped = [_create_group_probe(gateway, sample_group)] if sample_group is not None else []
    return [search, *sampled, *others, *_history_footprint_and_group_probes(gateway), *grouped]


def _user_probes(gateway: Gateway) -> list[_Probe]:
    return [
        _Probe(
            "search users (SCIM filters)",
            ("directory:user:view",),
            lambda: gateway.search_users(
                [Criterion("EXACT", ("email",), "doctor-probe@invalid.example")],
                page_size=1,
                deadline=deadline(),
            ),
        ),
        _Probe(
            "edit users (SCIM PUT/PATCH, deactivate, reactivate, division on reactivation)",
            ("directory:user:edit", "directory:organization:admin", "admin"),
            lambda: _edit_and_move(gateway),
            allowed=(NotFound,),
        ),
        _Probe(
            "delete users (SCIM DELETE, soft delete)",
            ("directory:user:delete", "directory:organization:admin", "admin"),
            lambda: gateway.delete_user(PROBE_ID, deadline=deadline()),
            allowed=(NotFound,),
        ),
        _Probe(
            "remove queue members (drain after deactivation)",
            ("routing:queue:edit", "routing:queueMember:manage"),
            lambda: gateway.remove_queue_member(PROBE_ID, PROBE_ID, deadline=deadline()),
            allowed=(NotFound,),
        ),
        _Probe(
            "add queue members (reactivation restores memberships)",
            ("routing:queue:edit", "routing:queueMember:manage"),
            lambda: gateway.add_queue_member(PROBE_ID, PROBE_ID, deadline=deadline()),
            allowed=(NotFound,),
        ),
        _Probe(
            # routing:queue:edit is not enough here (genesys-api.md 3): without one of these a
            # reactivation answers 403 after the user is already active, queues left unjoined.
            "join queues (reactivation re-joins queues)",
            ("routing:queue:join", "routing:queueMember:manage"),
            lambda: gateway.set_queues_joined(PROBE_ID, {PROBE_ID: True}, deadline=deadline()),
            allowed=(NotFound,),
        ),
        _Probe(
            "end sessions (cutting access revokes the user's tokens)",
            ("oauth:token:delete",),
            lambda: gateway.revoke_sessions(PROBE_ID, deadline=deadline()),
            allowed=(NotFound,),
        ),
    ]


def _history_footprint_and_group_probes(gateway: Gateway) -> list[_Probe]:
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        _Probe(
            "read conversation history (evidence before and after a delete)",
            ("analytics:conversationDetail:view", "analytics:agentConversationDetail:view"),
            lambda: gateway.conversation_history(
                HistoryQuery((PROBE_ID,), now - timedelta(hours=1), now), deadline=deadline()
            ),
        ),
        _Probe(
            "read role grants (footprint snapshot before deactivation or delete)",
            ("authorization:grant:view",),
            lambda: gateway.role_grants(PROBE_ID, deadline=deadline()),
            allowed=(NotFound,),
        ),
        _Probe(
            "grant roles (restore on reactivation and re-hire)",
            ("authorization:grant:add",),
            lambda: gateway.grant_roles(
                PROBE_ID, [RoleGrant(PROBE_ID, PROBE_ID)], deadline=deadline()
            ),
            allowed=(NotFound,),
        ),
        _Probe(
            "assign routing skills (restore on reactivation and re-hire)",
            ("routing:skill:assign",),
            lambda: gateway.assign_skills(
                PROBE_ID, [Proficiency(PROBE_ID, 0.0)], deadline=deadline()
            ),
            allowed=(NotFound,),
        ),
        _Probe(
            "assign routing languages (restore on reactivation and re-hire)",
            ("routing:language:assign", "routing:skill:assign"),
            lambda: gateway.assign_languages(
                PROBE_ID, [Proficiency(PROBE_ID, 0.0)], deadline=deadline()
            ),
            allowed=(NotFound,),
        ),
        _Probe(
            "edit group members (SCIM Groups)",
            ("directory:group:edit",),
            lambda: gateway.remove_group_members(PROBE_ID, [PROBE_ID], deadline=deadline()),
            allowed=(NotFound,),
        ),
        _Probe(
            "delete groups (SCIM DELETE /Groups)",
            ("directory:group:delete",),
            lambda: gateway.delete_group(PROBE_ID, deadline=deadline()),
            allowed=(NotFound,),
        ),
    ]


def _create_group_probe(gateway: Gateway, taken: str) -> _Probe:
    return _Probe(
        "create groups (SCIM POST /Groups)",
        ("directory:group:add",),
        # A taken name: 409 when allowed, and nothing is created.
        lambda: gateway.create_group(taken, deadline=deadline()),
        allowed=(Conflict,),
    )


def _sample_user_probes(gateway: Gateway, user_id: str, email: str) -> list[_Probe]:
    return [
        _Probe(
            "create users (SCIM POST)",
            ("directory:user:add",),
            # A taken e-mail: 409 when allowed, and nothing is created.
            lambda: gateway.create_user(
                UserFields(name="scim-bridge doctor", email=email), deadline=deadline()
            ),
            allowed=(Conflict,),
        ),
        _Probe(
            "view queue memberships (drain, restore)",
            ("routing:queue:view",),
            lambda: gateway.user_queues(user_id, deadline=deadline()),
        ),
    ]


def run_checks(settings: Settings, connect: Callable[[Settings], Gateway]) -> list[Check]:
    try:
        settings.require_genesys()
    except ConfigError as e:
        return [Check("configuration", False, str(e), "set the variables named (README)")]
    checks = [Check("configuration", True, f"{settings.genesys_api_host}")]
    gateway = connect(settings)
    try:
        gateway.ensure_token(deadline=time.monotonic() + 30)
    except AuthenticationFailed as e:
        return [
            *checks,
            Check(
                "log in (client credentials)",
                False,
                _said(e),
                "check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET, and that the OAuth client "
                f"uses the Client Credentials grant, in the org at {settings.genesys_api_host}",
            ),
        ]
    except GenesysError as e:
        return [
            *checks,
            Check(
                "log in (client credentials)",
                False,
                _said(e),
                f"could not reach {settings.genesys_api_host}: check GENESYS_API_HOST or "
                "GENESYS_REGION, whichever is set (the org's region, e.g. mypurecloud.ie), and "
                "outbound HTTPS from this host",
            ),
        ]
    checks.append(Check("log in (client credentials)", True))
    sample: tuple[str, str] | None = None
    try:
        users = gateway.list_users(page_size=5, state="active", deadline=time.monotonic() + 30)
        checks.append(Check("read users", True, f"{users.total} users in the org"))
        sample = next(((u.id, u.email) for u in users.items if u.email), None)
    except GenesysError as e:
        checks.append(Check("read users", False, _said(e), "see the message from Genesys"))
    group: str | None = None
    try:
        groups = gateway.list_groups(page_size=1, deadline=time.monotonic() + 30)
        group = groups.items[0].name if groups.items else None
        if group is None:
            checks.append(
                Check(
                    "create groups (SCIM POST /Groups)",
                    True,
                    "not checked: the org has no group whose name a harmless create could reuse",
                    permissions=("directory:group:add",),
                )
            )
    except GenesysError as e:
        checks.append(Check("read groups", False, _said(e), "see the message from Genesys"))
    for probe in _probes(gateway, sample, group):
        checks.append(_run(probe))
    return checks


def _run(probe: _Probe) -> Check:
    try:
        probe.call()
    except PermissionDenied as e:
        return Check(
            probe.name,
            False,
            _said(e),
            ROLE_FIX.format(perms=" or ".join(probe.permissions)),
            probe.permissions,
        )
    except probe.allowed:
        pass
    except GenesysError as e:
        return Check(
            probe.name, False, _said(e), "unexpected answer; run again, then see the message"
        )
    return Check(probe.name, True, permissions=probe.permissions)


def _said(error: GenesysError) -> str:
    parts = [f"{error.status}", error.code or "", error.message]
    return "Genesys said: " + " ".join(p for p in parts if p)


def render(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        perms = f" [{', '.join(check.permissions)}]" if check.permissions else ""
        lines.append(f"  [{'ok' if check.ok else 'FAIL'}] {check.name}{perms}")
        shown = not check.ok or check.name in ("configuration", "read users") or check.permissions
        if check.detail and shown:
            lines.append(f"         {check.detail}")
        if check.fix and not check.ok:
            lines.append(f"         fix: {check.fix}")
    failed = sum(not c.ok for c in checks)
    lines.append("all checks passed" if not failed else f"{failed} check(s) failed")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command
def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check the Genesys org named by the environment (GENESYS_REGION or GENESYS_API_HOST, "
        "GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET): credentials, region and every permission "
        "the bridge needs, by harmless calls. Exit 0 when all pass."
    )


def run(_args: argparse.Namespace) -> int:
    from scim_bridge.bootstrap import bootstrap

    settings = Settings.from_env()
    # Its own rate budget, no database: doctor runs before go-live, maybe where there is none.
    components = bootstrap(settings, share_budget=False)
    try:
        checks = run_checks(settings, lambda _settings: components.require_gateway())
    finally:
        components.close()
    print(f"scim-bridge doctor: {settings.genesys_api_host or '(no Genesys host configured)'}")
    print(render(checks))
    return 0 if all(c.ok for c in checks) else 1

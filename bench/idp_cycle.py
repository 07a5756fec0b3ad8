"""Genesys calls per SCIM operation over an Okta-style and an Entra-style cycle, and what the IdP
sees at the real 300/min budget.

One bridge over real HTTP (a ServerThread) in front of the sandbox. Each cycle is what
shared/idp-behaviour.md describes, as a new customer's first day sends it: for each user the
``userName eq`` lookup that finds nothing and the create; Okta's ``GET`` then ``PUT`` profile
update (1(c)), Entra's manager link and its PATCHes in both forms (2(c)); group pushes (lookup by
name, create, membership PATCHes in each IdP's forms); deactivations (Okta's path-less PATCH,
Entra's ``"False"``) with Entra's following group-member removal; reactivations (Okta's
re-assignment: lookup, PUT, PATCH; Entra's ``"True"``); a DELETE; then an incremental Entra cycle
(lookup, PATCH). The deprovisioning worker does not run: a deactivation's calls are the ones its
request makes.

Phase 1 counts the Genesys calls each SCIM request makes (the sandbox's own counter,
``/sandbox/stats``, before and after each request) with a budget too large to matter. Phase 2
replays the same cycle, as fast as one IdP connection sends it, against a fresh sandbox and
bridge with both at 300/min (genesys-api.md 5.1), and counts the SCIM answers that were 429/503.

    PYTHONPATH=. .venv/bin/python bench/idp_cycle.py [--users 8] [--rate 300] [--skip-budget]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import urllib3
from _bridge import sandbox_settings

from scim_bridge.app import create_app
from scim_bridge.sandbox import SandboxConfig
from scim_bridge.sandbox import create_app as create_sandbox
from scim_bridge.sandbox.control import SandboxControl
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.scim.tokens import TokenStore

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Phase 1's budget: never in the way. The bridge keeps it as a ring of that many rows in its
# database, so it is large enough, not absurd (10 million rows took minutes to create).
UNLIMITED = 100_000


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


@dataclasses.dataclass
class Answer:
    kind: str
    status: int
    calls: collections.Counter[str]
    body: Any


@dataclasses.dataclass
class Scim:
    """One IdP connection: sends SCIM requests and keeps what each one cost in Genesys calls."""

    http: urllib3.PoolManager
    base: str
    token: str
    sandbox: SandboxControl | None  # None: no per-request counting (phase 2)
    answers: list[Answer] = dataclasses.field(default_factory=list)

    def send(self, kind: str, method: str, path: str, body: Any = None) -> Any:
        before = self.sandbox.stats() if self.sandbox else None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/scim+json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/scim+json"
        response = self.http.request(method, self.base + path, body=data, headers=headers)
        calls: collections.Counter[str] = collections.Counter()
        if self.sandbox is not None and before is not None:
            calls = api_calls(before, self.sandbox.stats())
        parsed = json.loads(response.data) if response.data else None
        self.answers.append(Answer(kind, response.status, calls, parsed))
        return parsed if response.status < 300 else None

    def lookup(self, user_name: str) -> Any:
        query = urllib.parse.urlencode({"filter": f'userName eq "{user_name}"'})
        found = self.send("lookup", "GET", f"/Users?{query}")
        return (found or {}).get("Resources") or []

    def group_lookup(self, name: str, *, excluded: bool) -> Any:
        params = {"filter": f'displayName eq "{name}"'}
        if excluded:
            params["excludedAttributes"] = "members"
        return self.send("group-lookup", "GET", "/Groups?" + urllib.parse.urlencode(params))


def api_calls(before: dict[str, Any], after: dict[str, Any]) -> collections.Counter[str]:
    """Genesys API calls between two ``/sandbox/stats`` (the token endpoint left out: it has
    its own budget, genesys-api.md 5.1), by endpoint and status."""
    out: collections.Counter[str] = collections.Counter()
    for endpoint, by_status in after["endpoints"].items():
        if "/api/" not in endpoint:
            continue
        for status, n in by_status.items():
            d = n - before["endpoints"].get(endpoint, {}).get(status, 0)
            if d:
                out[f"{endpoint} {status}"] += d
    return out


def okta_user(name: str, title: str = "") -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": name,
        "name": {"givenName": "Okta", "familyName": name.split("@", maxsplit=1)[0]},
        "emails": [{"primary": True, "value": name, "type": "work"}],
        "displayName": f"Okta {name.split('@', maxsplit=1)[0]}",
        "locale": "en-US",
        "externalId": "00u" + uuid.uuid4().hex[:17],
        "groups": [],
        "password": "1mz050nq",
        "active": True,
        **({"title": title} if title else {}),
    }


def okta_cycle(scim: Scim, n: int, tag: str) -> None:
    """Okta (idp-behaviour.md 1): assignment, profile push, group push, unassign, re-assign."""
    ids: dict[str, str] = {}
    for i in range(n):
        name = f"okta.{tag}.{i}@example.com"
        scim.lookup(name)
        created = scim.send("create", "POST", "/Users", okta_user(name))
        if created:
            ids[name] = created["id"]
    for uid in ids.values():  # profile update: GET then PUT of the whole object (1(c))
        current = scim.send("get", "GET", f"/Users/{uid}")
        if current:
            current["title"] = "Agent"
            current.pop("meta", None)
            scim.send("put", "PUT", f"/Users/{uid}", current)
    group_name = f"Okta push {tag}"
    scim.group_lookup(group_name, excluded=False)
    group = scim.send("group-create", "POST", "/Groups", {"schemas": [GROUP], "displayName": group_name, "members": []})  # fmt: skip
    members = list(ids.values())
    if group:
        gid = group["id"]
        rename = {"op": "replace", "value": {"id": gid, "displayName": group_name}}
        add = {"op": "add", "path": "members", "value": [{"value": m} for m in members]}
        scim.send("group-add", "PATCH", f"/Groups/{gid}", patch(rename, add))
        gone = {"op": "remove", "path": f'members[value eq "{members[0]}"]'}
        scim.send("group-remove", "PATCH", f"/Groups/{gid}", patch(rename, gone))
    off = {"op": "replace", "value": {"active": False}}
    for uid in members[: n // 2]:
        scim.send("deactivate", "PATCH", f"/Users/{uid}", patch(off))
    on = {"op": "replace", "value": {"active": True}}
    for name in list(ids)[: n // 2]:  # re-assignment: lookup, update, activate (1(e))
        found = scim.lookup(name)
        if found:
            user = found[0]
            user.pop("meta", None)
            scim.send("put", "PUT", f"/Users/{user['id']}", user)
            scim.send("reactivate", "PATCH", f"/Users/{user['id']}", patch(on))
    for uid in members:  # the link check (1(a) 6)
        scim.send("get", "GET", f"/Users/{uid}")


def entra_user(name: str, i: int) -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": f"entra{i}",
        "userName": name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Entra User", "familyName": "User", "givenName": "Entra"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": str(700000 + i), "department": "Tour Operations"},
    }


def entra_updates(scim: Scim, ids: dict[str, str]) -> None:
    """Manager links (a second round trip after the create), then both PATCH forms (2(c))."""
    previous = None
    for name, uid in ids.items():
        if previous is not None:
            manager = {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": previous}
            scim.send("patch-manager", "PATCH", f"/Users/{uid}", patch(manager))
        previous = uid
        legacy = patch(
            {"op": "Replace", "path": "displayName", "value": "Legacy Name"},
            {"op": "Replace", "path": "name.givenName", "value": "Legacy"},
            {"op": "Add", "path": "title", "value": "Engineer"},
            {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "42"},
            {"op": "Replace", "path": "userName", "value": name},
        )
        scim.send("patch-attrs", "PATCH", f"/Users/{uid}", legacy)
        batched = patch(
            {
                "op": "replace",
                "value": {"displayName": "Batched Name", "name.familyName": "Batched"},
            }
        )
        scim.send("patch-attrs", "PATCH", f"/Users/{uid}", batched)


def entra_groups(scim: Scim, members: list[str], tag: str) -> str | None:
    name = f"Entra group {tag}"
    scim.group_lookup(name, excluded=True)
    body = {
        "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": str(uuid.uuid4()),
        "displayName": name,
        "meta": {"resourceType": "Group"},
    }  # fmt: skip
    group = scim.send("group-create", "POST", "/Groups", body)
    if not group:
        return None
    gid: str = group["id"]
    add = {"op": "Add", "path": "members", "value": [{"$ref": None, "value": m} for m in members]}
    scim.send("group-add", "PATCH", f"/Groups/{gid}?excludedAttributes=members", patch(add))
    rename = {"op": "Replace", "path": "displayName", "value": name + " renamed"}
    scim.send("group-rename", "PATCH", f"/Groups/{gid}?excludedAttributes=members", patch(rename))
    return gid


def entra_cycle(scim: Scim, n: int, tag: str) -> None:
    """Entra (idp-behaviour.md 2): initial cycle, groups, disable, restore, delete, incremental."""
    ids: dict[str, str] = {}
    for i in range(n):
        name = f"entra.{tag}.{i}@example.com"
        scim.lookup(name)
        created = scim.send("create", "POST", "/Users", entra_user(name, i))
        if created:
            ids[name] = created["id"]
    entra_updates(scim, ids)
    members = list(ids.values())
    gid = entra_groups(scim, members, tag)
    off = {"op": "Replace", "path": "active", "value": "False"}
    for uid in members[: n // 2]:  # unassign: disable, then the group membership goes (2(d))
        scim.send("deactivate", "PATCH", f"/Users/{uid}", patch(off))
        if gid:
            scim.send("group-get", "GET", f"/Groups/{gid}?excludedAttributes=members")
            gone = {"op": "remove", "path": f'members[value eq "{uid}"]'}
            path = f"/Groups/{gid}?excludedAttributes=members"
            scim.send("group-remove", "PATCH", path, patch(gone))
    on = {"op": "Replace", "path": "active", "value": "True"}
    for uid in members[: n // 2]:
        scim.send("reactivate", "PATCH", f"/Users/{uid}", patch(on))
    if members:
        scim.send("delete", "DELETE", f"/Users/{members[-1]}")
    for name, uid in list(ids.items())[:-1]:  # the next incremental cycle: lookup, then PATCH
        scim.lookup(name)
        title = {"op": "Replace", "path": "title", "value": "Senior Engineer"}
        scim.send("patch-attrs", "PATCH", f"/Users/{uid}", patch(title))


@dataclasses.dataclass
class Run:
    okta: Scim
    entra: Scim
    sandbox: SandboxControl


@contextlib.contextmanager
def bridge_run(users: int, rate: int, *, count: bool) -> Iterator[Run]:
    config = SandboxConfig(users=users * 4, rate_limit_per_minute=rate)
    with ServerThread(create_sandbox(config)) as sandbox:
        control = SandboxControl(sandbox.url)
        app = create_app(sandbox_settings(sandbox.url, config, rate=rate))
        store = TokenStore(app.extensions["scim_bridge"].engine)
        okta, entra = store.create("okta", idp="okta"), store.create("entra", idp="entra")
        try:
            with ServerThread(app) as bridge:
                http = urllib3.PoolManager(retries=False, timeout=120)
                base = bridge.url + "/scim/v2"
                counted = control if count else None
                yield Run(
                    Scim(http, base, okta, counted), Scim(http, base, entra, counted), control
                )
        finally:
            app.extensions["scim_bridge"].close()
            control.close()


def per_kind(answers: list[Answer]) -> dict[str, tuple[int, int, collections.Counter[str]]]:
    kinds: dict[str, tuple[int, int, collections.Counter[str]]] = {}
    for a in answers:
        n, calls, endpoints = kinds.get(a.kind, (0, 0, collections.Counter()))
        kinds[a.kind] = (n + 1, calls + sum(a.calls.values()), endpoints + a.calls)
    return kinds


def report_counts(answers: list[Answer], *, detail: bool) -> None:
    print(f"{'SCIM operation':<16}{'requests':>9}{'calls':>7}{'per request':>13}")
    for kind, (n, calls, endpoints) in sorted(per_kind(answers).items()):
        print(f"{kind:<16}{n:>9}{calls:>7}{calls / n:>13.2f}")
        if detail:
            for endpoint, k in sorted(endpoints.items()):
                print(f"{'':<18}{k / n:>5.2f}  {endpoint}")
    total = sum(sum(a.calls.values()) for a in answers)
    non_2xx = [a for a in answers if a.status >= 300]
    print(f"{'all':<16}{len(answers):>9}{total:>7}{total / len(answers):>13.2f}")
    if non_2xx:
        print("non-2xx answers:", collections.Counter((a.kind, a.status) for a in non_2xx))


def phase_counts(users: int, *, detail: bool) -> None:
    with bridge_run(users, UNLIMITED, count=True) as run:
        okta_cycle(run.okta, users, "a")
        entra_cycle(run.entra, users, "a")
        for title, answers in (
            ("Okta", run.okta.answers),
            ("Entra", run.entra.answers),
            ("both", run.okta.answers + run.entra.answers),
        ):
            print(f"\n== {title}: Genesys calls per SCIM request")
            report_counts(answers, detail=detail and title == "both")


def phase_budget(users: int, rate: int) -> None:
    with bridge_run(users, rate, count=False) as run:
        started = time.monotonic()
        okta_cycle(run.okta, users, "b")
        entra_cycle(run.entra, users, "b")
        wall = time.monotonic() - started
        stats = run.sandbox.stats()
        calls = sum(n for e, by in stats["endpoints"].items() if "/api/" in e for n in by.values())
        print(f"\n== at {rate}/min: the same cycle as one IdP connection sends it ({wall:.1f} s)")
        for title, scim in (("Okta", run.okta), ("Entra", run.entra)):
            statuses = collections.Counter(a.status for a in scim.answers)
            failed = sum(n for s, n in statuses.items() if s in (429, 503))
            print(
                f"{title}: {len(scim.answers)} SCIM requests, {failed} answered 429/503 "
                f"({dict(sorted(statuses.items()))})"
            )
        print(f"Genesys calls {calls}; 429s from Genesys {stats['rate_limited']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="users per IdP cycle")
    parser.add_argument("--rate", type=int, default=300, help="Genesys budget per minute")
    parser.add_argument("--skip-budget", action="store_true", help="phase 1 only")
    parser.add_argument("--detail", action="store_true", help="calls by endpoint per kind")
    args = parser.parse_args()
    phase_counts(args.users, detail=args.detail)
    if not args.skip_budget:
        phase_budget(args.users, args.rate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

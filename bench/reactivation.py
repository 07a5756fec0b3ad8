"""Genesys calls for an agent's deactivation and reactivation over SCIM, and for Okta's PUT
deactivation sent to a replica that has not seen the user.

Agents: seeded users holding what an admin gives an agent in Genesys (role grants of their own,
skills, languages, queues they joined themselves). Each is deactivated with Okta's ``PATCH
active=false`` and reactivated with ``PATCH active=true`` (idp-behaviour.md 1(d), 1(e)); the
bridge restores what the deactivation took (roles, skills, languages, queue memberships and their
joined flags) and reads back what it restored. The sandbox counts every call (``/sandbox/stats``).

Replicas: two bridges on one database, as behind a load balancer. Okta's AIW apps deactivate
with ``GET`` then ``PUT`` of the whole user, ``active`` false (1(c), 1(d)); the GET reaches one
replica and the PUT the other, which has not seen the user.

No worker runs: each job runs within its request, so a request's calls are its job's.

    PYTHONPATH=. .venv/bin/python bench/reactivation.py [--agents 10]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
from collections.abc import Iterator
from typing import Any

import urllib3
from _bridge import sandbox_settings
from idp_cycle import Scim, patch

from scim_bridge.app import create_app
from scim_bridge.sandbox import SandboxConfig
from scim_bridge.sandbox import create_app as create_sandbox
from scim_bridge.sandbox.control import SandboxControl
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.scim.tokens import TokenStore

UNLIMITED = 100_000
ACTIVE = {"op": "replace", "value": {"active": True}}
INACTIVE = {"op": "replace", "value": {"active": False}}


@contextlib.contextmanager
def replicas(users: int) -> Iterator[tuple[Scim, Scim, SandboxControl]]:
    """Two bridges on one SQLite database before one sandbox; an Okta connection to each."""
    config = SandboxConfig(users=users, rate_limit_per_minute=UNLIMITED)
    with ServerThread(create_sandbox(config)) as sandbox:
        control = SandboxControl(sandbox.url)
        first = create_app(sandbox_settings(sandbox.url, config, rate=UNLIMITED))
        database = first.extensions["scim_bridge"].settings.database_url
        second = create_app(
            sandbox_settings(sandbox.url, config, rate=UNLIMITED, database_url=database)
        )
        token = TokenStore(first.extensions["scim_bridge"].engine).create("okta", idp="okta")
        http = urllib3.PoolManager(retries=False, timeout=120)
        try:
            with ServerThread(first) as a, ServerThread(second) as b:
                yield (
                    Scim(http, a.url + "/scim/v2", token, control),
                    Scim(http, b.url + "/scim/v2", token, control),
                    control,
                )
        finally:
            for app in (first, second):
                app.extensions["scim_bridge"].close()
            control.close()


def agents(scim: Scim, control: SandboxControl, count: int) -> list[str]:
    """Active users with own grants, skills, languages and queues of their own."""
    listing = scim.send("list", "GET", "/Users?count=500&filter=active eq true") or {}
    found = []
    for resource in listing.get("Resources", []):
        uid = resource["id"]
        record = control.user(uid)
        footprint = record["footprint"]
        if (
            record["queues"]
            and all(q["memberBy"] == "user" for q in record["queues"])
            and any(g["subjectId"] == uid for g in footprint["grants"])
            and footprint["routingSkills"]
            and footprint["routingLanguages"]
        ):
            found.append(uid)
    return found[:count]


def cycle(scim: Scim, control: SandboxControl, uid: str) -> dict[str, Any]:
    queues = len(control.user(uid)["queues"])
    scim.send("deactivate", "PATCH", f"/Users/{uid}", patch(INACTIVE))
    scim.send("reactivate", "PATCH", f"/Users/{uid}", patch(ACTIVE))
    back = len(control.user(uid)["queues"]) == queues and control.user(uid)["state"] == "active"
    return {"queues": queues, "back": back}


def put_deactivations(a: Scim, b: Scim, control: SandboxControl, ids: list[str]) -> None:
    for uid in ids:
        body = a.send("get", "GET", f"/Users/{uid}")
        body["active"] = False
        b.send("put-deactivate", "PUT", f"/Users/{uid}", body)
        assert control.user(uid)["state"] == "inactive", uid


def report(
    answers: list[Any], kinds: tuple[str, ...], reactivations: list[tuple[int, int]]
) -> None:
    for kind in kinds:
        rows = [x for x in answers if x.kind == kind]
        calls = sum(sum(x.calls.values()) for x in rows)
        endpoints: collections.Counter[str] = sum((x.calls for x in rows), collections.Counter())
        statuses = collections.Counter(x.status for x in rows)
        print(f"{kind:16} {len(rows):4} requests {calls:5} calls {calls / len(rows):6.2f} each "
              f"{dict(statuses)}")  # fmt: skip
        for endpoint, n in sorted(endpoints.items()):
            print(f"{'':18}{n / len(rows):6.2f}  {endpoint}")
    per: dict[int, list[int]] = collections.defaultdict(list)
    for queues, calls in reactivations:
        per[queues].append(calls)
    for queues, counts in sorted(per.items()):
        print(f"reactivation of an agent in {queues} queue(s): {sum(counts) / len(counts):.2f} "
              f"calls ({len(counts)} agents)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10)
    args = parser.parse_args()
    with replicas(users=max(200, args.agents * 20)) as (a, b, control):
        ids = agents(a, control, args.agents * 2)
        if len(ids) < 2 * args.agents:
            raise SystemExit(f"the seeded org has {len(ids)} agents; ask for fewer")
        reactivations = []  # (queues, calls) per agent
        for uid in ids[: args.agents]:
            outcome = cycle(a, control, uid)
            assert outcome["back"], (uid, outcome)
            reactivations.append((outcome["queues"], sum(a.answers[-1].calls.values())))
        put_deactivations(a, b, control, ids[args.agents :])
        kinds = ("deactivate", "reactivate", "put-deactivate")
        report(a.answers + b.answers, kinds, reactivations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What hostile input costs now (issue 14): a flood of wrong admin tokens, and PATCH ``add`` on a
multi-valued attribute at 10k and 40k values.

    .venv/bin/python bench/failure_paths.py [--logins 100] [--repeat 3]

The flood goes through the Flask test client of ``create_app`` on a SQLite file (no Genesys
needed): wall time and the ``admin:auth:failed`` events it left in the chain (one per reason per
10 s; before issue 14, one per request). PATCH is ``apply_patch`` alone, best of ``--repeat``,
with the cyclic garbage collector off while timing (its cost grows with the heap, not with the
algorithm) and on, so both figures are shown.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scim_bridge.app import create_app
from scim_bridge.audit import Tag
from scim_bridge.config import Settings
from scim_bridge.scim.patch import Operation, apply_patch, parse_path


def admin_flood(logins: int) -> tuple[float, int]:
    db = Path(tempfile.mkdtemp(prefix="bench-failure-")) / "bridge.db"
    app = create_app(
        Settings(database_url=f"sqlite:///{db}", admin_token="b" * 40, log_level="ERROR")
    )
    client = app.test_client()
    started = time.perf_counter()
    for i in range(logins):
        response = client.get("/admin/audit", headers={"Authorization": f"Bearer wrong-{i}"})
        assert response.status_code == 401
    elapsed = time.perf_counter() - started
    events = app.extensions["scim_bridge"].audit.events(tag=Tag.ADMIN_AUTH_FAILED, limit=10_000)
    app.extensions["scim_bridge"].close()
    return elapsed, len(events)


def patch_cost(values: int, repeat: int, *, collector: bool) -> float:
    path = parse_path("emails")
    best = float("inf")
    for _ in range(repeat):
        emails = [{"value": f"e{i}@example.com", "type": "other"} for i in range(values)]
        resource = {"schemas": [], "emails": emails[: values // 2]}
        operation = Operation("add", path, emails, True)
        gc.collect()
        if not collector:
            gc.disable()
        try:
            started = time.perf_counter()
            apply_patch(resource, [operation], "User")
            best = min(best, time.perf_counter() - started)
        finally:
            gc.enable()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    elapsed, events = admin_flood(args.logins)
    print(f"{args.logins} wrong admin tokens: {elapsed:.2f} s, {events} audit event(s)")
    for collector in (False, True):
        small = patch_cost(10_000, args.repeat, collector=collector)
        large = patch_cost(40_000, args.repeat, collector=collector)
        label = "gc on " if collector else "gc off"
        print(
            f"PATCH add ({label}): 10k emails {small:.2f} s, 40k {large:.2f} s, "
            f"ratio {large / small:.1f} (linear: 4)"
        )


if __name__ == "__main__":
    main()

"""A small typed client for the sandbox's ``/sandbox/...`` control endpoints (tests, demo, bench)."""

from __future__ import annotations

import json
from typing import Any, cast

import urllib3


class SandboxControlError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"sandbox control call failed with {status}: {body[:300]}")
        self.status = status
        self.body = body


class SandboxControl:
    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = urllib3.PoolManager(
            num_pools=1, maxsize=4, retries=False, timeout=urllib3.Timeout(total=timeout_s)
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(
            method,
            self.base_url + path,
            body=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"} if body is not None else None,
        )
        text = response.data.decode("utf-8", "replace")
        if response.status >= 300:
            raise SandboxControlError(response.status, text)
        return cast(dict[str, Any], json.loads(text)) if text else {}

    def info(self) -> dict[str, Any]:
        """Seed, user counts by state, queue/group/conversation counts, the home division id."""
        return self._call("GET", "/sandbox")

    def reset(
        self, users: int | None = None, seed: int | None = None, history_days: int | None = None
    ) -> dict[str, Any]:
        """A freshly seeded org; faults, tokens, stats, jobs and extra clients back to their
        defaults. ``history_days``: how far back the seeded history goes."""
        body: dict[str, Any] = {}
        if users is not None:
            body["users"] = users
        if seed is not None:
            body["seed"] = seed
        if history_days is not None:
            body["history_days"] = history_days
        return self._call("POST", "/sandbox/reset", body)

    def faults(self, **changes: Any) -> dict[str, Any]:
        """Change faults (see docs/sandbox.md); with no arguments, read the current ones."""
        if not changes:
            return self._call("GET", "/sandbox/faults")
        return self._call("POST", "/sandbox/faults", changes)

    def fail_next(
        self,
        path_prefix: str,
        *,
        status: int = 503,
        count: int = 1,
        method: str | None = None,
        retry_after: int | None = None,
    ) -> dict[str, Any]:
        """Make the next ``count`` matching requests fail with ``status`` (replaces the list)."""
        rule: dict[str, Any] = {"path_prefix": path_prefix, "status": status, "count": count}
        if method is not None:
            rule["method"] = method
        if retry_after is not None:
            rule["retry_after"] = retry_after
        return self.faults(fail_next=[rule])

    def user(self, user_id: str) -> dict[str, Any]:
        """The full record in any state, with ``queues``, ``groups``, ``activeConversation``,
        ``conversationCount``, ``oldestConversationAt``, ``stateHistory`` ([{state, at}]) and
        ``activeSessions``."""
        return self._call("GET", f"/sandbox/users/{user_id}")

    def sign_in(self, user_id: str) -> str:
        """The user signs in to Genesys: a bearer token that authenticates as them."""
        return str(self._call("POST", f"/sandbox/users/{user_id}/sessions", {})["token"])

    def state_history(self, user_id: str) -> list[tuple[str, str]]:
        """Every state the user has been in, oldest first, as (state, ISO-8601 time)."""
        return [(h["state"], h["at"]) for h in self.user(user_id)["stateHistory"]]

    def set_conversation(
        self, user_id: str, active: bool, media_type: str = "voice"
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            f"/sandbox/users/{user_id}/conversation",
            {"active": active, "mediaType": media_type},
        )

    def route_group(self, queue_id: str, group_id: str) -> list[str]:
        """Route a group to a queue; the ids of the users now in it through a group."""
        body = self._call("POST", f"/sandbox/queues/{queue_id}/groups", {"groupId": group_id})
        return [str(u) for u in body["memberIds"]]

    def gdpr_delete(self, user_id: str) -> dict[str, Any]:
        """Mark a user deleted through the GDPR API: it can no longer be restored."""
        return self._call("POST", f"/sandbox/users/{user_id}/gdpr-delete")

    def bump_version(self, user_id: str) -> dict[str, Any]:
        """Simulate a concurrent editor: the user's version goes up by one."""
        return self._call("POST", f"/sandbox/users/{user_id}/version-bump", {})

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/sandbox/stats")

    def add_client(self, client_id: str, secret: str, permissions: list[str]) -> dict[str, Any]:
        """Register an OAuth client holding exactly ``permissions`` (``["*"]``: all of them)."""
        return self._call(
            "POST",
            "/sandbox/clients",
            {"client_id": client_id, "client_secret": secret, "permissions": permissions},
        )

    def expire_tokens(self) -> int:
        """Expire every issued token now; returns how many there were."""
        return int(self._call("POST", "/sandbox/tokens/expire", {})["expired"])

    def async_jobs(self) -> list[dict[str, Any]]:
        """Every async details job since the reset: ``jobId, state, interval, userIds``."""
        return list(self._call("GET", "/sandbox/analytics/jobs")["jobs"])

    def expire_async_job(self, job_id: str) -> dict[str, Any]:
        """Expire an async details job now: its status turns EXPIRED, its results 404."""
        return self._call("POST", f"/sandbox/analytics/jobs/{job_id}/expire", {})

    def close(self) -> None:
        self._http.clear()

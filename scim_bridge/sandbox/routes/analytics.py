"""``POST /api/v2/analytics/conversations/details/query`` (genesys-api.md 4.1)."""

from __future__ import annotations

from flask import Blueprint, Response

from scim_bridge.sandbox.analytics import details_query
from scim_bridge.sandbox.http import json_object, json_response, require, sandbox

bp = Blueprint("analytics", __name__)


@bp.post("/api/v2/analytics/conversations/details/query")
def conversation_details() -> Response:
    require("analytics:conversationDetail:view", "analytics:agentConversationDetail:view")
    state = sandbox()
    body = json_object(what="ConversationQuery")
    with state.lock:
        return json_response(details_query(state.org, body))

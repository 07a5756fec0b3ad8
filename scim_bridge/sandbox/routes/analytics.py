"""Conversation details: the query (genesys-api.md 4.1), async jobs (4.3, ``sandbox/jobs.py``) and
the read by id (``get_analytics_conversations_details``, docs/sandbox.md)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from scim_bridge.sandbox import jobs
from scim_bridge.sandbox.analytics import details_query
from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.http import (
    empty,
    int_arg,
    json_object,
    json_response,
    multi,
    require,
    sandbox,
)
from scim_bridge.sandbox.model import iso

bp = Blueprint("analytics", __name__)

# genesys-api.md 5.5: "details query and jobs"; 4.3: availability needs conversationDetail:view.
DETAIL_PERMISSIONS = ("analytics:conversationDetail:view", "analytics:agentConversationDetail:view")
JOBS = "/api/v2/analytics/conversations/details/jobs"
# How many ids one read by id takes: UNCONFIRMED (the SDK says only "Comma-separated conversation
# ids"); the sandbox takes the stricter reading of the page sizes around it, 100.
MAX_IDS_BY_ID = 100


@bp.get("/api/v2/analytics/conversations/details")
def conversations_by_id() -> Response:
    """ "Gets multiple conversations by id" (``AnalyticsConversationWithoutAttributesMultiGetResponse``):
    ``{conversations: [...]}`` for the ids the org has; an id it does not have is left out (the
    stricter reading: no 404 for the whole call, so a caller must notice what is missing)."""
    require(*DETAIL_PERMISSIONS)
    ids = list(dict.fromkeys(multi("id")))
    if not ids:
        raise ApiError.bad_request("id is required: comma-separated conversation ids")
    if len(ids) > MAX_IDS_BY_ID:
        raise ApiError.bad_request(f"at most {MAX_IDS_BY_ID} conversation ids per request")
    state = sandbox()
    with state.lock:
        known = (state.org.conversations.get(i) for i in ids)
        return json_response({"conversations": [c.to_json() for c in known if c is not None]})


@bp.post("/api/v2/analytics/conversations/details/query")
def conversation_details() -> Response:
    require(*DETAIL_PERMISSIONS)
    state = sandbox()
    body = json_object(what="ConversationQuery")
    with state.lock:
        return json_response(details_query(state.org, body))


@bp.post(JOBS)
def submit_job() -> Response:
    """202 ``{jobId}``; 429 when the org already runs ``async_job_concurrency`` jobs."""
    require(*DETAIL_PERMISSIONS)
    state = sandbox()
    body = json_object(what="AsyncConversationQuery")
    with state.lock:
        now, faults = state.clock(), state.faults
        user_ids = jobs.validate(state.org, body)
        if state.jobs.running(now) >= faults.async_job_concurrency:
            raise ApiError(
                429,
                f"The organization already runs {faults.async_job_concurrency} async details "
                "jobs; wait for one to finish.",
                "too.many.requests",
            )
        outcome = faults.async_job_outcomes.pop(0) if faults.async_job_outcomes else "FULFILLED"
        job = jobs.AsyncJob(
            id=state.org.new_id(),
            body=body,
            submitted_at=now,
            delay_s=faults.async_job_delay_s,
            ttl_s=faults.async_job_ttl_s,
            lag_s=faults.data_availability_lag_s,
            outcome=outcome,
            user_ids=user_ids,
        )
        state.jobs.jobs[job.id] = job
        return json_response({"jobId": job.id}, 202)


@bp.get(JOBS + "/availability")
def availability() -> Response:
    """``DataAvailabilityResponse``: the lake reaches ``now - data_availability_lag_s``."""
    require("analytics:conversationDetail:view")
    state = sandbox()
    with state.lock:
        lag = state.faults.data_availability_lag_s
        return json_response({"dataAvailabilityDate": iso(state.clock() - lag)})


@bp.get(JOBS + "/<job_id>")
def job_status(job_id: str) -> Response:
    require(*DETAIL_PERMISSIONS)
    state = sandbox()
    with state.lock:
        return json_response(state.jobs.get(job_id).status_json(state.clock()))


@bp.delete(JOBS + "/<job_id>")
def cancel_job(job_id: str) -> Response:
    """ "Delete/cancel an async request" (``delete_analytics_conversations_details_job``)."""
    require(*DETAIL_PERMISSIONS)
    state = sandbox()
    with state.lock:
        job = state.jobs.get(job_id)
        if job.cancelled_at is None:
            job.cancelled_at = state.clock()
        return empty(204)


@bp.get(JOBS + "/<job_id>/results")
def job_results(job_id: str) -> Response:
    require(*DETAIL_PERMISSIONS)
    state = sandbox()
    page_size = int_arg("pageSize", jobs.MAX_RESULTS_PAGE_SIZE, 1, jobs.MAX_RESULTS_PAGE_SIZE)
    cursor = request.args.get("cursor")
    with state.lock:
        job = state.jobs.get(job_id)
        current = job.state(state.clock())
        if current == "EXPIRED":
            raise ApiError.not_found("job results", job_id)
        if current != "FULFILLED":
            raise ApiError.bad_request(f"The job is {current}; results exist once it is FULFILLED.")
        jobs.complete(state.org, job)
        return json_response(jobs.results_page(job, cursor, page_size))

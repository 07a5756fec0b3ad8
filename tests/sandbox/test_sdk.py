"""A plain PureCloudPlatformClientV2 script against the sandbox: the SDK must parse every answer
into its models, with no enum turning into "outdated_sdk_version" (genesys-api.md 1.5).

Only this test imports the SDK outside scim_bridge/genesys: it checks the sandbox, not the bridge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import PureCloudPlatformClientV2 as sdk  # noqa: N813 - a plain SDK script
import pytest
from PureCloudPlatformClientV2.rest import ApiException

from tests.fixtures.sandbox import Sandbox


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[Any]:
    api_client = sdk.ApiClient(host=sandbox.url)
    returned = api_client.get_client_credentials_token(sandbox.client_id, sandbox.client_secret)
    assert returned is api_client  # 1.1: it returns itself, holding the token
    yield api_client
    # Close the SDK's keep-alive sockets, or their finalisers warn (ResourceWarning).
    api_client.get_http_client().rest_client.pool_manager.clear()


def _clean(model: Any) -> dict[str, Any]:
    data = model.to_dict()
    assert "outdated_sdk_version" not in json.dumps(data, default=str)
    return dict(data)


def _interval(days_back: int) -> str:
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days_back)
    return f"{start:%Y-%m-%dT%H:%M:%S.000Z}/{end:%Y-%m-%dT%H:%M:%S.000Z}"


def test_users_through_the_sdk_2(client: Any, sandbox: Sandbox) -> None:
    users = sdk.UsersApi(client)
    listing = users.get_users(page_size=100, state="any")
    assert isinstance(listing, sdk.UserEntityListing)
    assert listing.total == 20
    for entity in listing.entities:
        _clean(entity)
    active = users.get_users(page_size=100).entities
    user = users.get_user(active[0].id, expand=["conversationSummary"])
    assert user.conversation_summary.call.contact_center.active == 0
    sandbox.set_conversation(user.id, active=True)
    busy = users.get_user(user.id, expand=["conversationSummary"])
    assert busy.conversation_summary.call.contact_center.active == 1
    sandbox.set_conversation(user.id, active=False)

    update = sdk.UpdateUser()
    update.version = user.version
    update.title = "Updated by the SDK"
    patched = users.patch_user(user.id, update)
    assert patched.version == user.version + 1
    assert patched.title == "Updated by the SDK"
    with pytest.raises(ApiException) as stale:
        users.patch_user(user.id, update)
    assert stale.value.status == 409
    assert json.loads(stale.value.body)["code"] == "version.mismatch"

    deactivate = sdk.UpdateUser()
    deactivate.state = "inactive"
    deactivate.version = patched.version
    assert users.patch_user(user.id, deactivate).state == "inactive"

    assert users.delete_user(user.id) == {}
    with pytest.raises(ApiException) as gone:
        users.get_user(user.id)
    assert gone.value.status == 404
    assert gone.value.headers.get("inin-correlation-id") == json.loads(gone.value.body)["contextId"]
    deleted = users.get_user(user.id, state="deleted")
    assert deleted.state == "deleted"
    restore = sdk.UpdateUser()
    restore.state = "active"
    restore.version = deleted.version
    assert users.patch_user(user.id, restore).state == "active"

    create = sdk.CreateUser()
    create.name = "Sdk Person"
    create.email = "sdk.person@example.com"
    create.state = "active"
    created = users.post_users(create)
    assert _clean(created)["state"] == "active"
    with pytest.raises(ApiException) as duplicate:
        users.post_users(create)
    assert duplicate.value.status == 409
    assert json.loads(duplicate.value.body)["code"] == "general.conflict"


def test_user_search_through_the_sdk_2_6(client: Any) -> None:
    users = sdk.UsersApi(client)
    target = users.get_users(page_size=1).entities[0]
    criteria = sdk.UserSearchCriteria()
    criteria.type = "EXACT"
    criteria.fields = ["email"]
    criteria.value = target.email
    request = sdk.UserSearchRequest()
    request.query = [criteria]
    request.page_size = 25
    found = users.post_users_search(request)
    assert isinstance(found, sdk.UsersSearchResponse)
    assert [u.id for u in found.results] == [target.id]
    criteria.value = "nobody@nowhere.example"
    empty = users.post_users_search(request)
    assert empty.total == 0
    assert empty.results is None


def test_queues_through_the_sdk_3(client: Any, sandbox: Sandbox) -> None:
    users, routing = sdk.UsersApi(client), sdk.RoutingApi(client)
    member = next(
        u
        for u in users.get_users(page_size=100).entities
        if (queues := sandbox.user(u.id)["queues"])
        and all(q["memberBy"] == "user" for q in queues)  # a group's is not removed one by one
    )
    queues = users.get_user_queues(member.id, joined=True, page_size=100).entities + (
        users.get_user_queues(member.id, joined=False, page_size=100).entities
    )
    assert {q.id for q in queues} == {q["id"] for q in sandbox.user(member.id)["queues"]}
    for queue in queues:
        _clean(queue)
        assert routing.delete_routing_queue_member(queue.id, member.id) is None
    assert sandbox.user(member.id)["queues"] == []
    listing = routing.get_routing_queues(page_size=100)
    assert listing.total == 6
    body = [sdk.WritableEntity()]
    body[0].id = member.id
    routing.post_routing_queue_members(queues[0].id, body)
    assert [q["id"] for q in sandbox.user(member.id)["queues"]] == [queues[0].id]


def test_analytics_through_the_sdk_4_1(client: Any) -> None:
    analytics = sdk.AnalyticsApi(client)
    users = sdk.UsersApi(client).get_users(page_size=10).entities
    predicates = []
    for user in users:
        predicate = sdk.SegmentDetailQueryPredicate()
        predicate.type = "dimension"
        predicate.dimension = "userId"
        predicate.operator = "matches"
        predicate.value = user.id
        predicates.append(predicate)
    segment_filter = sdk.SegmentDetailQueryFilter()
    segment_filter.type = "or"
    segment_filter.predicates = predicates
    paging = sdk.PagingSpec()
    paging.page_size = 100
    paging.page_number = 1
    query = sdk.ConversationQuery()
    query.interval = _interval(31)
    query.segment_filters = [segment_filter]
    query.order = "asc"
    query.order_by = "conversationStart"
    query.paging = paging
    response = analytics.post_analytics_conversations_details_query(query)
    assert isinstance(response, sdk.AnalyticsConversationQueryResponse)
    assert response.total_hits == len(response.conversations) > 0
    for conversation in response.conversations:
        data = _clean(conversation)
        assert data["conversation_end"] is not None
        agents = {p.user_id for p in conversation.participants if p.purpose == "agent"}
        assert agents & {u.id for u in users}
    paging.page_number = 2
    past = analytics.post_analytics_conversations_details_query(query)
    assert past.conversations is None  # the loop-ending signal of 4.1


def test_async_jobs_through_the_sdk_4_3(client: Any, sandbox: Sandbox) -> None:
    sandbox.faults(async_job_delay_s=0.05, data_availability_lag_s=0)
    analytics = sdk.AnalyticsApi(client)
    users = sdk.UsersApi(client).get_users(page_size=10).entities
    predicate = sdk.SegmentDetailQueryPredicate()
    predicate.type = "dimension"
    predicate.dimension = "userId"
    predicate.operator = "matches"
    predicate.value = users[0].id
    segment_filter = sdk.SegmentDetailQueryFilter()
    segment_filter.type = "or"
    segment_filter.predicates = [predicate]
    query = sdk.AsyncConversationQuery()
    query.interval = _interval(95)
    query.segment_filters = [segment_filter]
    query.order = "asc"
    query.order_by = "conversationStart"
    submitted = analytics.post_analytics_conversations_details_jobs(query)
    assert isinstance(submitted, sdk.AsyncQueryResponse)
    deadline = time.monotonic() + 10
    status = analytics.get_analytics_conversations_details_job(submitted.job_id)
    while status.state in ("QUEUED", "PENDING"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
        status = analytics.get_analytics_conversations_details_job(submitted.job_id)
    assert isinstance(status, sdk.AsyncQueryStatus)
    assert _clean(status)["state"] == "FULFILLED"
    assert isinstance(status.expiration_date, datetime)
    page = analytics.get_analytics_conversations_details_job_results(submitted.job_id, page_size=1)
    assert isinstance(page, sdk.AnalyticsConversationAsyncQueryResponse)
    seen = []
    while True:
        _clean(page)
        assert isinstance(page.data_availability_date, datetime)
        seen += [c.conversation_id for c in page.conversations or []]
        if not page.cursor:
            break
        page = analytics.get_analytics_conversations_details_job_results(
            submitted.job_id, cursor=page.cursor, page_size=1
        )
    assert len(seen) == sandbox.user(users[0].id)["conversationCount"]
    lake = analytics.get_analytics_conversations_details_jobs_availability()
    assert isinstance(lake, sdk.DataAvailabilityResponse)
    assert isinstance(lake.data_availability_date, datetime)
    analytics.delete_analytics_conversations_details_job(submitted.job_id)


def test_groups_through_the_sdk_7(client: Any) -> None:
    groups, users = sdk.GroupsApi(client), sdk.UsersApi(client)
    listing = groups.get_groups(page_size=25)
    assert listing.total == 4
    for group in listing.entities:
        _clean(group)
    create = sdk.GroupCreate()
    create.name = "SDK Group"
    create.type = "official"
    create.visibility = "public"
    group = groups.post_groups(create)
    members = sdk.GroupMembersUpdate()
    members.member_ids = [u.id for u in users.get_users(page_size=3).entities]
    members.version = group.version
    groups.post_group_members(group.id, members)
    listed = groups.get_group_members(group.id)
    assert {u.id for u in listed.entities} == set(members.member_ids)
    groups.delete_group_members(group.id, members.member_ids[0])
    update = sdk.GroupUpdate()
    update.version = groups.get_group(group.id).version
    update.name = "SDK Group Renamed"
    assert groups.put_group(group.id, body=update).name == "SDK Group Renamed"
    criteria = sdk.GroupSearchCriteria()
    criteria.type = "STARTS_WITH"
    criteria.fields = ["name"]
    criteria.value = "sdk group"
    search = sdk.GroupSearchRequest()
    search.query = [criteria]
    assert [g.id for g in groups.post_groups_search(search).results] == [group.id]
    groups.delete_group(group.id)
    with pytest.raises(ApiException) as gone:
        groups.get_group(group.id)
    assert gone.value.status == 404


def test_sdk_retries_429_with_retry_after_silently_1_4(client: Any, sandbox: Sandbox) -> None:
    """genesys-api.md 1.4: urllib3 inside the SDK sleeps Retry-After and resends."""
    sandbox.fail_next("/api/v2/users", method="GET", status=429, retry_after=1)
    started = time.monotonic()
    assert sdk.UsersApi(client).get_users(page_size=1).total > 0
    assert time.monotonic() - started >= 1
    assert sandbox.stats()["endpoints"]["GET /api/v2/users"] == {"200": 1, "429": 1}


def test_sdk_sees_expired_token_as_401_1_3(client: Any, sandbox: Sandbox) -> None:
    sandbox.expire_tokens()
    with pytest.raises(ApiException) as expired:
        sdk.UsersApi(client).get_users()
    assert expired.value.status == 401
    assert json.loads(expired.value.body)["code"] == "credentials.expired"


def test_footprint_through_the_sdk_issue_12(client: Any, sandbox: Sandbox) -> None:
    users, authz, routing = (
        sdk.UsersApi(client),
        sdk.AuthorizationApi(client),
        sdk.RoutingApi(client),
    )
    info = sandbox.info()
    user = users.get_users(page_size=1).entities[0]
    expanded = users.get_user(user.id, expand=["skills", "languages", "groups"])
    assert all(isinstance(s, sdk.UserRoutingSkill) for s in expanded.skills)
    assert all(isinstance(lang, sdk.UserRoutingLanguage) for lang in expanded.languages)
    _clean(expanded)
    subject = authz.get_authorization_subject(user.id, include_duplicates=True)
    assert isinstance(subject, sdk.AuthzSubject)
    assert subject.grants
    assert all(isinstance(g, sdk.AuthzGrant) for g in subject.grants)
    assert subject.grants[0].division.home_division in (True, False)
    _clean(subject)
    pair = sdk.RoleDivisionPair()
    pair.role_id = info["roles"]["Quality Evaluator"]
    pair.division_id = info["divisions"]["Sales EMEA"]
    grants = sdk.RoleDivisionGrants()
    grants.grants = [pair]
    assert authz.post_authorization_subject_bulkadd(user.id, grants) is None
    skill = sdk.UserRoutingSkillPost()
    skill.id = info["skills"]["VIP Handling"]
    skill.proficiency = 3.5
    skills = users.patch_user_routingskills_bulk(user.id, [skill])
    assert isinstance(skills, sdk.UserSkillEntityListing)
    _clean(skills)
    language = sdk.UserRoutingLanguagePost()
    language.id = info["languages"]["German"]
    language.proficiency = 4.0
    _clean(users.patch_user_routinglanguages_bulk(user.id, [language]))
    _clean(users.get_user_routingskills(user.id))
    _clean(users.get_user_routinglanguages(user.id))
    _clean(routing.get_routing_skills(page_size=100))
    _clean(routing.get_routing_languages(page_size=100))
    _clean(authz.get_authorization_roles(page_size=100))
    _clean(authz.get_authorization_divisions(page_size=100))
    home = authz.get_authorization_divisions_home()
    assert home.home_division is True
    authz.post_authorization_division_object(home.id, "USER", [user.id])
    assert users.get_user(user.id).division.id == home.id

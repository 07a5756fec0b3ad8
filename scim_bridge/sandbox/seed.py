"""A deterministic org for a (users, seed) pair: same ids, names, queues, groups and history.

Times are laid out backwards from the start of the current UTC day, so a seed gives the same
org all day long; history covers ``history_days`` days before today (none today, so that a
query that leaves "now" out of its interval sees all of it: genesys-api.md 4.1). The last
:data:`RECENT_DAYS` are busy; before that history is sparse (a few conversations for some users),
drawn from a random stream of its own, so that the rest of the org is the same whatever
``history_days`` is.
"""

from __future__ import annotations

import random
import uuid

from scim_bridge.sandbox.model import (
    Conversation,
    Division,
    Group,
    Participant,
    Queue,
    Role,
    RoutingEntity,
    Segment,
    Session,
    User,
)
from scim_bridge.sandbox.org import Org

DAY = 86400.0
RECENT_DAYS = 90

FIRST_NAMES = (
    "Ada", "Alan", "Barbara", "Brian", "Carmen", "Chen", "Dana", "Diego", "Elif", "Emma",
    "Farah", "Felix", "Grace", "Hana", "Ivan", "Jamal", "Julia", "Kofi", "Lena", "Luis",
    "Maya", "Mohammed", "Nadia", "Noah", "Olga", "Omar", "Priya", "Quinn", "Rosa", "Sam",
    "Sofia", "Tariq", "Uma", "Victor", "Wei", "Xena", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito",
    "Jensen", "Kim", "Lopez", "Moreau", "Novak", "Okafor", "Patel", "Quispe", "Rossi",
    "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zhang",
)  # fmt: skip
DEPARTMENTS = ("Sales", "Support", "Billing", "Retention", "Operations")
TITLES = ("Agent", "Senior Agent", "Team Lead", "Supervisor", "Analyst")
QUEUE_NAMES = ("Sales", "Support Tier 1", "Support Tier 2", "Billing", "Retention", "VIP")
GROUP_NAMES = (
    ("Contact Center Agents", "official", "public"),
    ("Supervisors", "official", "members"),
    ("Night Shift", "social", "public"),
    ("Escalations", "official", "owners"),
)
MEDIA = ("voice", "voice", "voice", "chat", "email", "message")


def build_org(
    users: int, seed: int, now: float, history_days: int = 90, *, group_queues: bool = False
) -> Org:
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not a secret
    home = Division(id=_uuid(rng), name="Home", description="The home division", home=True)
    org = Org(rng, home)
    today = now - now % DAY
    _seed_users(org, users, today)
    _seed_queues(org, today)
    _seed_history(org, today, min(history_days, RECENT_DAYS))
    _seed_groups(org, today)
    if history_days > RECENT_DAYS:
        _seed_old_history(org, today, history_days, random.Random(f"{seed}:old-history"))  # noqa: S311
    _seed_footprint(org, seed, today)
    if group_queues:
        _seed_group_queues(org, seed)
    return org


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _seed_users(org: Org, count: int, today: float) -> None:
    rng = org.rng
    supervisors: list[str] = []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # Fixed positions, so that even a 20-user org has inactive and deleted users.
        state = "deleted" if i % 20 == 11 else "inactive" if i % 12 == 5 else "active"
        email = f"{first}.{last}.{i + 1}@example.com".lower()
        user = User(
            id=org.new_id(),
            name=f"{first} {last}",
            email=email,
            username=email,
            division_id=org.home_division_id,
            state=state,
            version=rng.randint(1, 9),
            department=rng.choice(DEPARTMENTS),
            title=rng.choice(TITLES),
            employer_info={"employeeId": f"E{10001 + i}", "employeeType": "Full-time"},
            date_modified=today - rng.uniform(1, 365) * DAY,
        )
        if supervisors and rng.random() < 0.7:
            user.manager_id = rng.choice(supervisors)
        if i < max(1, count // 10):
            supervisors.append(user.id)
        org.add_user(user, today, seeded=True)


def _seed_queues(org: Org, today: float) -> None:
    rng = org.rng
    for name in QUEUE_NAMES:
        org.add_queue(Queue(id=org.new_id(), name=name, division_id=org.home_division_id,
                            date_created=today - rng.uniform(200, 900) * DAY))  # fmt: skip
    queue_ids = list(org.queues)
    for user in org.users.values():
        if user.state == "deleted":
            continue
        for queue_id in rng.sample(queue_ids, rng.choice((0, 1, 1, 2, 2, 3))):
            org.set_member(queue_id, user.id, joined=rng.random() < 0.75)


def _seed_history(org: Org, today: float, days: int) -> None:
    rng = org.rng
    people = list(org.users.values())
    queue_ids = list(org.queues)
    for user in people:
        count = 0 if rng.random() < 0.15 else rng.randint(1, 8)
        for _ in range(count):
            start = today - rng.uniform(60, days * DAY)
            queue_id = rng.choice(queue_ids)
            second = rng.choice(people) if rng.random() < 0.1 else None
            agents = [user] if second is None or second is user else [user, second]
            org.add_conversation(
                conversation(org, start, rng.choice(MEDIA), queue_id, agents, ended=True)
            )


def _seed_old_history(org: Org, today: float, days: int, rng: random.Random) -> None:
    """Sparse history from :data:`RECENT_DAYS` back to ``days``: about 60% of users (deleted
    ones included) have one to three conversations there."""
    people = list(org.users.values())
    queue_ids = list(org.queues)
    for user in people:
        if rng.random() >= 0.6:
            continue
        for _ in range(rng.randint(1, 3)):
            start = today - rng.uniform(RECENT_DAYS * DAY + 60, days * DAY)
            media = rng.choice(MEDIA)
            queue_id = rng.choice(queue_ids) if queue_ids else None
            org.add_conversation(
                conversation(org, start, media, queue_id, [user], ended=True, rng=rng)
            )


def conversation(
    org: Org,
    start: float,
    media: str,
    queue_id: str | None,
    agents: list[User],
    *,
    ended: bool,
    rng: random.Random | None = None,
) -> Conversation:
    """A customer conversation routed through a queue to one or more agents in turn.
    ``rng``: the random stream to draw from (the org's by default), ids included."""
    rng = rng or org.rng

    def new_id() -> str:
        return _uuid(rng)

    direction = "inbound" if rng.random() < 0.8 else "outbound"
    clock = start
    participants = []
    queue_name = org.queues[queue_id].name if queue_id else "Direct"
    if direction == "inbound" and queue_id:
        wait = rng.uniform(5, 120)
        participants.append(
            Participant(new_id(), queue_name, "acd", None, [
                Session(new_id(), media, direction, [
                    Segment(clock, clock + wait, "interact", queue_id),
                ]),
            ])
        )  # fmt: skip
        clock += wait
    for index, agent in enumerate(agents):
        live = index == len(agents) - 1 and not ended
        segments, took = _agent_segments(rng, clock, queue_id, live=live)
        participants.append(
            Participant(new_id(), agent.name, "agent", agent.id,
                        [Session(new_id(), media, direction, segments)])
        )  # fmt: skip
        clock += took
    end = clock if ended else None
    customer = Participant(new_id(), "Customer", "customer", None, [
        Session(new_id(), media, direction, [Segment(start, end, "interact", queue_id)]),
    ])  # fmt: skip
    participants.insert(0, customer)
    return Conversation(
        id=new_id(),
        start=start,
        end=end,
        originating_direction=direction,
        division_ids=[org.home_division_id],
        participants=participants,
    )


def _agent_segments(
    rng: random.Random, clock: float, queue_id: str | None, *, live: bool
) -> tuple[list[Segment], float]:
    """One agent's alert, talk and wrap-up (talk still going when ``live``), and the time from
    the alert to the end of the talk."""
    alert = rng.uniform(2, 20)
    talk = rng.uniform(60, 1200)
    acw = rng.uniform(10, 120)
    segments = [Segment(clock, clock + alert, "alert", queue_id)]
    if live:
        segments.append(Segment(clock + alert, None, "interact", queue_id))
    else:
        segments.append(Segment(clock + alert, clock + alert + talk, "interact", queue_id))
        segments.append(
            Segment(clock + alert + talk, clock + alert + talk + acw, "wrapup", queue_id)
        )
    return segments, alert + talk


def _seed_groups(org: Org, today: float) -> None:
    rng = org.rng
    candidates = [u.id for u in org.sorted_users() if u.state != "deleted"]
    for name, kind, visibility in GROUP_NAMES:
        group = Group(
            id=org.new_id(),
            name=name,
            description=f"{name} (seeded)",
            type=kind,
            visibility=visibility,
            version=rng.randint(1, 5),
            date_modified=today - rng.uniform(1, 100) * DAY,
        )
        size = min(len(candidates), rng.randint(0, 8))
        group.member_ids = dict.fromkeys(rng.sample(candidates, size))
        if candidates:
            group.owner_ids = [rng.choice(candidates)]
        org.groups[group.id] = group


def _seed_group_queues(org: Org, seed: int) -> None:
    """Route the largest group to one queue, so that the org holds ``memberBy=group`` queue
    memberships (genesys-api.md 3) that ``DELETE .../members/{userId}`` refuses.

    Its own rng, seeded from ``seed``: the draws above (and any seeding added after this) keep
    their ids whatever this adds.
    """
    if not org.groups or not org.queues:
        return
    rng = random.Random(f"group-queues:{seed}")  # noqa: S311 - reproducible, not a secret
    group = max(org.groups.values(), key=lambda g: (len(g.member_ids), g.name))
    queue_id = rng.choice(sorted(org.queues))
    org.link_group(queue_id, group.id)
    for user_id in list(org.queue_members[queue_id]):
        if org.member_by(queue_id, user_id) == "group":
            org.queue_members[queue_id][user_id] = rng.random() < 0.75


# --- the footprint (issue 12): divisions, roles and grants, routing skills and languages ---------
DIVISIONS = ("Sales EMEA", "Support Americas", "Outsourcer - Northwind")
ROLES = (
    # (name, Genesys default role, permissions)
    ("Master Admin", True, ("admin",)),
    ("employee", True, ("directory:user:view", "directory:group:view")),
    ("User", True, ("directory:user:view", "routing:queue:join")),
    ("Supervisor", True, ("routing:queue:view", "analytics:conversationDetail:view")),
    ("Quality Evaluator", True, ("quality:evaluation:add",)),
    ("Agent - Voice", False, ("routing:queue:join", "conversation:call:accept")),
    ("Agent - Digital", False, ("routing:queue:join", "conversation:message:accept")),
    ("Queue Manager", False, ("routing:queue:edit", "routing:queueMember:manage")),
)
SKILLS = ("Billing Disputes", "Technical Support L1", "Technical Support L2", "Retention Offers",
          "VIP Handling", "Outbound Sales", "Chargebacks")  # fmt: skip
LANGUAGES = ("English", "Spanish", "French", "German", "Portuguese", "Japanese")
PROFICIENCIES = (1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)


def _seed_catalog(org: Org, rng: random.Random, today: float) -> None:
    """The org's divisions, roles, skills and languages."""
    for name in DIVISIONS:
        division = Division(id=_uuid(rng), name=name, description=f"{name} (seeded)")
        org.divisions[division.id] = division
    for name, default, permissions in ROLES:
        seeded = Role(_uuid(rng), name, f"{name} (seeded)", permissions, default=default)
        org.roles[seeded.id] = seeded
    for name in SKILLS:
        entity = RoutingEntity(_uuid(rng), name, "skills", today - rng.uniform(100, 900) * DAY)
        org.skills[entity.id] = entity
    for name in LANGUAGES:
        entity = RoutingEntity(_uuid(rng), name, "languages", today - rng.uniform(100, 900) * DAY)
        org.languages[entity.id] = entity


def _seed_footprint(org: Org, seed: int, today: float) -> None:
    """Divisions, roles, skills and languages, and on each user what an admin would have given.

    Drawn from a separate rng so that the ids and choices of everything seeded before stay as
    they were. Active users hold their grants; inactive ones lost theirs when they were
    deactivated (genesys-api.md 2.4), deleted ones sit in Home with nothing. Two groups grant
    roles to their members, which survive deactivation.
    """
    rng = random.Random(f"footprint:{seed}")  # noqa: S311 - reproducible simulation
    _seed_catalog(org, rng, today)
    roles = {r.name: r.id for r in org.roles.values()}
    divisions = [d for d in org.divisions if d != org.home_division_id]
    home = org.home_division_id
    since = today - 400 * DAY
    for user in org.sorted_users():
        if user.state == "deleted":
            continue
        own = rng.choice(divisions) if rng.random() < 0.4 else home
        user.division_id = own
        org.reindex_now(user)
        org.user_skills[user.id] = {
            s: rng.choice(PROFICIENCIES) for s in rng.sample(list(org.skills), rng.randint(0, 4))
        }
        org.user_languages[user.id] = {
            language: float(rng.randint(2, 5))
            for language in rng.sample(list(org.languages), rng.randint(1, 2))
        }
        if user.state != "active":
            continue  # deactivation removed every directly granted role (2.4)
        at = since + rng.uniform(0, 300) * DAY
        org.grant(user.id, roles["employee"], home, at)
        agent = roles["Agent - Voice"] if rng.random() < 0.6 else roles["Agent - Digital"]
        org.grant(user.id, agent, own, at)
        if user.title in ("Team Lead", "Supervisor"):
            second = rng.choice(divisions)
            org.grant(user.id, roles["Supervisor"], own, at)
            org.grant(user.id, roles["Supervisor"], second, at)
        if rng.random() < 0.1:
            org.grant(user.id, roles["Queue Manager"], rng.choice(divisions), at)
    for group in org.groups.values():
        granted = {"Supervisors": "Supervisor", "Escalations": "Quality Evaluator"}.get(group.name)
        if granted is not None:
            group.roles_enabled = True
            org.grant(group.id, roles[granted], home, since)

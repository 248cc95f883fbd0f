"""The access policy, once, as a table: (role, token lines, dialog) -> (see, act, try take).

Every service derives its answers from `Scope`, so this table is what dialogs, crm-link,
notify and routing answer; tests/e2e/test_access_policy.py checks that they do.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, Text, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.events.catalog import (
    AssignedBy,
    ChannelType,
    CloseReason,
    Customer,
    DialogAssigned,
    DialogClosed,
    DialogOpened,
    DialogReopened,
    DialogTransferred,
    Direction,
    MessageAppended,
    ParticipantJoined,
    ParticipantLeft,
)
from openlines.events.lines import LinesConfig
from openlines.kit.access import (
    CrmFacts,
    CrmRights,
    DialogFacts,
    Role,
    Scope,
    follow,
    lines_visible_where,
    readable_where,
    report_visible_where,
    visible_where,
)
from openlines.kit.http.auth import Principal

# ann works on demo; bob on demo and vip. The caller is always ann.
CONFIG = LinesConfig.model_validate(
    {
        "operators": [{"id": "ann"}, {"id": "bob"}, {"id": "sue", "role": "supervisor"}],
        "lines": [
            {"id": "demo", "channels": [{"id": "tg-demo", "type": "telegram"}],
             "operators": ["ann", "bob"]},
            {"id": "vip", "channels": [{"id": "tg-vip", "type": "telegram"}],
             "operators": ["bob"]},
        ],
    }
)  # fmt: skip
LINES = ("demo", "vip")
STATUSES = ("unassigned", "active", "closed", "spam")


def scope(role: str, token: list[str] | None, crm: CrmRights | None = None) -> Scope:
    principal = Principal("ann", frozenset({role}), None if token is None else frozenset(token))
    return Scope.of(principal, CONFIG, crm=crm)


T, F = True, False
# role, token lines, dialog line, status, assignee, participants -> list, read, write, try take
TABLE = [
    # An operator: the unassigned dialogs of their lines, and what they hold or take part in;
    # any other dialog of their lines read-only.
    ("operator", None, "demo", "unassigned", None, (), T, T, T, T),
    ("operator", None, "vip", "unassigned", None, (), F, F, F, F),
    ("operator", None, "demo", "active", "bob", (), F, T, F, T),  # read-only; a lost race: 409
    ("operator", None, "demo", "active", "ann", (), T, T, T, T),
    ("operator", None, "vip", "active", "ann", (), T, T, T, T),  # transferred to her
    ("operator", None, "demo", "active", "bob", ("ann",), T, T, T, T),  # invited
    ("operator", None, "vip", "active", "bob", ("ann",), T, T, T, T),
    ("operator", None, "demo", "closed", "ann", (), T, T, T, T),  # her Closed tab
    ("operator", None, "vip", "spam", "bob", ("ann",), T, T, T, T),
    ("operator", None, "demo", "closed", "bob", (), F, T, F, F),
    ("operator", None, "demo", "closed", None, (), F, T, F, F),
    ("operator", None, "demo", "spam", None, (), F, T, F, F),
    ("operator", None, "vip", "active", "bob", (), F, F, F, F),  # not her line
    # The token's lines narrow, never widen; what one holds stays visible.
    ("operator", ["vip"], "demo", "unassigned", None, (), F, F, F, F),
    ("operator", ["vip"], "demo", "active", "bob", (), F, F, F, F),
    ("operator", ["demo", "vip"], "vip", "unassigned", None, (), F, F, F, F),
    ("operator", ["demo", "vip"], "demo", "unassigned", None, (), T, T, T, T),
    ("operator", [], "demo", "unassigned", None, (), F, F, F, F),
    ("operator", [], "vip", "active", "ann", (), T, T, T, T),
    ("operator", [], "demo", "closed", "bob", ("ann",), T, T, T, T),
    # A supervisor: every dialog of every line...
    ("supervisor", None, "vip", "unassigned", None, (), T, T, T, T),
    ("supervisor", None, "vip", "active", "bob", (), T, T, T, T),
    ("supervisor", None, "demo", "closed", "bob", (), T, T, T, T),
    ("supervisor", None, "vip", "spam", None, (), T, T, T, T),
    # ...of the token's lines only (the notify leak of issue 8).
    ("supervisor", ["demo"], "demo", "active", "bob", (), T, T, T, T),
    ("supervisor", ["demo"], "vip", "active", "bob", (), F, F, F, F),
    ("supervisor", ["demo"], "vip", "unassigned", None, (), F, F, F, F),
    ("supervisor", [], "demo", "unassigned", None, (), F, F, F, F),
    ("supervisor", [], "demo", "active", "bob", (), F, F, F, F),  # not even a race on demo
    ("supervisor", [], "vip", "active", "ann", (), T, T, T, T),
    ("supervisor", [], "vip", "closed", "bob", ("ann",), T, T, T, T),
    # The chat admin: everything, within the token's lines.
    ("admin", None, "vip", "spam", "bob", (), T, T, T, T),
    ("admin", None, "demo", "closed", None, (), T, T, T, T),
    ("admin", ["vip"], "demo", "unassigned", None, (), F, F, F, F),
    ("admin", ["vip"], "vip", "closed", "bob", (), T, T, T, T),
    # An unknown role grants nothing beyond an operator's.
    ("auditor", None, "vip", "active", "bob", (), F, F, F, F),
    ("auditor", None, "demo", "unassigned", None, (), T, T, T, T),
]


@pytest.mark.parametrize(
    ("role", "token", "line", "status", "assignee", "participants", "see", "read", "write", "take"),
    TABLE,
)
def test_the_table(
    role: str,
    token: list[str] | None,
    line: str,
    status: str,
    assignee: str | None,
    participants: tuple[str, ...],
    see: bool,
    read: bool,
    write: bool,
    take: bool,
) -> None:
    s = scope(role, token)
    dialog = DialogFacts(line, status, assignee, participants)
    answers = (s.can_see(dialog), s.can_read(dialog), s.can_write(dialog), s.can_try_take(dialog))
    assert answers == (see, read, write, take)
    # Whoever may write or list may read: a command never reveals a dialog one could not open.
    assert not (s.can_write(dialog) or s.can_see(dialog)) or s.can_read(dialog)


@pytest.mark.parametrize(
    ("role", "token", "line", "assignee", "mentioned", "read"),
    [
        ("operator", None, "vip", "bob", ("ann",), T),  # not her line: the mention lets her read
        ("operator", [], "vip", "bob", ("ann",), T),  # personal, like a participant
        ("operator", None, "vip", "bob", ("bob",), F),
        ("supervisor", ["demo"], "vip", "bob", ("ann",), T),
    ],
)
def test_a_mention_lets_one_read_but_neither_list_nor_write(
    role: str,
    token: list[str] | None,
    line: str,
    assignee: str,
    mentioned: tuple[str, ...],
    read: bool,
) -> None:
    s = scope(role, token)
    dialog = DialogFacts(line, "active", assignee, (), mentioned)
    assert (s.can_read(dialog), s.can_see(dialog), s.can_write(dialog)) == (read, F, F)


@pytest.mark.parametrize(
    ("role", "token", "line", "assignee", "transfer", "join", "invite"),
    [
        ("operator", None, "demo", "ann", T, T, F),  # the responsible operator
        ("operator", None, "demo", "bob", F, T, F),  # a colleague of the line joins, no more
        ("operator", None, "demo", None, F, T, F),  # the queue is routing's or a supervisor's
        ("operator", None, "vip", "ann", T, F, F),  # transferred to her from another line
        ("operator", None, "vip", "bob", F, F, F),
        ("supervisor", None, "vip", "bob", T, T, T),
        ("supervisor", ["demo"], "vip", "bob", F, F, F),
        ("admin", None, "demo", None, T, T, T),
    ],
)
def test_who_may_transfer_join_and_invite(
    role: str,
    token: list[str] | None,
    line: str,
    assignee: str | None,
    transfer: bool,
    join: bool,
    invite: bool,
) -> None:
    s = scope(role, token)
    dialog = DialogFacts(line, "active" if assignee else "unassigned", assignee)
    assert (s.can_transfer(dialog), s.can_join(dialog), s.can_invite(dialog)) == (
        transfer,
        join,
        invite,
    )


DIALOGS = [
    DialogFacts(line, status, assignee, participants, mentioned)
    for line, status, assignee, participants, mentioned in itertools.product(
        LINES,
        STATUSES,
        (None, "ann", "bob"),
        ((), ("ann",), ("bob",), ("ann", "bob")),
        ((), ("ann",), ("bob",)),
    )
]
SCOPES = [
    scope(role, token)
    for role, token in itertools.product(
        ("operator", "supervisor", "admin"), (None, [], ["demo"], ["vip"], ["demo", "vip"])
    )
]


@given(
    role=st.sampled_from(["operator", "supervisor", "admin"]),
    token=st.none() | st.lists(st.sampled_from([*LINES, "gone"]), unique=True),
    dialog=st.sampled_from(DIALOGS),
)
def test_a_token_narrows_and_never_widens(
    role: str, token: list[str] | None, dialog: DialogFacts
) -> None:
    narrowed, full = scope(role, token), scope(role, None)
    if narrowed.can_see(dialog):
        assert full.can_see(dialog)
        assert token is None or dialog.has_member("ann") or dialog.line_id in token
    if dialog.has_member("ann"):
        assert narrowed.can_see(dialog)  # one's own dialogs are never narrowed away


def test_scope_of_a_principal() -> None:
    assert scope("operator", None) == Scope("ann", Role.OPERATOR, frozenset({"demo"}), frozenset())
    sue = scope("supervisor", ["demo"])
    assert (sue.supervised_lines, sue.sees_all_lines, sue.is_supervisor) == (
        frozenset({"demo"}),
        False,
        True,
    )
    assert scope("admin", None).sees_all_lines
    assert Role.of({"operator", "admin"}) is Role.ADMIN
    assert scope("supervisor", None).crm is CrmRights.OWN  # today's default for every role


@pytest.mark.parametrize(
    ("role", "token", "queues"),
    [
        ("operator", None, ["demo"]),
        ("operator", ["vip"], []),
        ("supervisor", None, ["demo", "vip"]),
        ("supervisor", ["vip"], ["vip"]),
        ("supervisor", [], []),
        ("admin", ["demo"], ["demo"]),
    ],
)
def test_queue_lines_follow_what_one_sees_unassigned(
    role: str, token: list[str] | None, queues: list[str]
) -> None:
    s = scope(role, token)
    assert s.queue_lines(LINES) == queues
    for line in LINES:
        assert s.sees_queue_of(line) is s.can_see(DialogFacts(line, "unassigned"))


@pytest.mark.parametrize(
    ("role", "token", "target", "target_lines", "manage", "see"),
    [
        ("operator", None, "ann", ["demo"], T, T),
        ("operator", [], "ann", [], T, T),  # oneself, always
        ("operator", None, "bob", ["demo", "vip"], F, T),  # a colleague of demo
        ("operator", None, "carl", ["vip"], F, F),
        ("supervisor", None, "carl", [], T, T),
        ("supervisor", ["demo"], "bob", ["demo", "vip"], T, T),
        ("supervisor", ["demo"], "carl", ["vip"], F, F),
        ("admin", [], "bob", ["demo"], F, F),
    ],
)
def test_operators_one_may_manage_and_see(
    role: str,
    token: list[str] | None,
    target: str,
    target_lines: list[str],
    manage: bool,
    see: bool,
) -> None:
    s = scope(role, token)
    assert s.may_manage(target, target_lines) is manage
    assert s.sees_operator(target, target_lines) is see


@pytest.mark.parametrize(
    ("role", "token", "lines", "see", "manage"),
    [
        ("operator", None, ["demo"], T, F),  # reads the quick replies of her line
        ("operator", None, ["vip"], F, F),
        ("operator", None, ["vip", "demo"], T, F),  # one of her lines is enough to read
        ("supervisor", None, ["demo", "vip"], T, T),
        ("supervisor", ["demo"], ["demo"], T, T),
        ("supervisor", ["demo"], ["demo", "vip"], T, F),  # writes need every line
        ("supervisor", ["vip"], ["demo"], F, F),
        ("admin", None, ["gone"], T, T),  # the chat admin: every line, also future ones
        ("admin", None, [], F, F),  # a quick reply of no line is nobody's
    ],
)
def test_quick_replies_are_read_by_the_lines_and_written_by_their_supervisors(
    role: str, token: list[str] | None, lines: list[str], see: bool, manage: bool
) -> None:
    s = scope(role, token)
    assert s.sees_lines(lines) is see
    assert s.may_manage_quick_replies(lines) is manage


def test_crm_rights() -> None:
    hers = DialogFacts("vip", "active", "ann")
    bobs = DialogFacts("demo", "active", "bob")
    elsewhere = DialogFacts("other", "active", "bob")
    mentioned = DialogFacts("other", "closed", "bob", mentioned=("ann",))
    none, own, every = (scope("operator", None, crm) for crm in CrmRights)
    assert (none.crm, own.crm, every.crm) == (CrmRights.NONE, CrmRights.OWN, CrmRights.ALL)
    # own: one of its dialogs is hers (assigned later), or she made or converted it, or she
    # was @mentioned in one of its dialogs.
    assert own.can_see_crm(CrmFacts(dialogs=[bobs, hers]))
    assert not own.can_see_crm(CrmFacts(dialogs=[bobs]))
    assert own.can_see_crm(CrmFacts(responsible=["ann"], dialogs=[elsewhere]))
    assert own.can_see_crm(CrmFacts(dialogs=[mentioned]))
    assert not none.can_see_crm(CrmFacts(responsible=["ann"], dialogs=[hers]))
    assert not none.may_use_crm() and own.may_use_crm()
    # all: every entity of her lines (demo), not of lines she does not work on.
    assert every.can_see_crm(CrmFacts(dialogs=[bobs]))
    assert not every.can_see_crm(CrmFacts(dialogs=[elsewhere]))
    assert not every.can_see_crm(CrmFacts())
    assert scope("admin", None, CrmRights.ALL).can_see_crm(CrmFacts())
    # `all` reaches the entity, not the chats: its dialogs are still filtered by can_see.
    assert not every.can_see(bobs)
    # The dialog JSON's crm block follows the same rule.
    assert not none.sees_crm_of(hers) and own.sees_crm_of(hers) and own.sees_crm_of(mentioned)
    assert not own.sees_crm_of(bobs) and every.sees_crm_of(bobs)


def test_crm_rights_come_from_the_lines_config() -> None:
    config = LinesConfig.model_validate(
        {
            "crm": {"operator": "own", "supervisor": "all", "admin": "all"},
            "operators": [{"id": "ann"}, {"id": "cara", "crm": "none"}],
        }
    )

    def rights(who: str, role: str) -> CrmRights:
        return Scope.of(Principal(who, frozenset({role}), None), config).crm

    assert rights("ann", "operator") is CrmRights.OWN
    assert rights("cara", "operator") is CrmRights.NONE  # her own, before her role's
    assert rights("sue", "supervisor") is CrmRights.ALL
    assert rights("root", "admin") is CrmRights.ALL
    assert Scope.of(Principal("x", frozenset({"operator"}), None), LinesConfig()).crm is (
        CrmRights.OWN
    )  # the default: today's behaviour


@pytest.mark.parametrize(
    ("role", "token", "line", "operator", "see"),
    [
        ("operator", None, "demo", "ann", T),  # her own figures, whatever the line
        ("operator", None, "vip", "ann", T),
        ("operator", None, "demo", "bob", F),  # never a colleague's
        ("operator", None, "demo", None, F),  # nor the line's unattributed ones
        ("supervisor", None, "vip", "bob", T),
        ("supervisor", None, None, None, T),
        ("supervisor", ["demo"], "demo", None, T),
        ("supervisor", ["demo"], "vip", "bob", F),  # the token narrows to demo
        ("admin", ["vip"], "demo", "ann", F),
    ],
)
def test_report_figures_are_the_supervisors_lines_and_the_operators_own(
    role: str, token: list[str] | None, line: str | None, operator: str | None, see: bool
) -> None:
    assert scope(role, token).sees_report_figure(line, operator) is see


def test_facts_follow_the_dialogs_events() -> None:
    d = uuid.uuid4()
    opened = DialogOpened(
        dialog_id=d,
        line_id="demo",
        channel_id="tg-demo",
        channel_type=ChannelType.TELEGRAM,
        conversation_key="tg-demo:1",
        customer=Customer(name="Carla", external_id="1"),
        external_user_id="1",
        title="Carla",
    )
    assert follow(None, ParticipantJoined(dialog_id=d, operator_id="x", actor_id="x")) is None
    facts = follow(None, opened)
    assert facts == DialogFacts("demo", "unassigned")
    assigned = DialogAssigned(
        dialog_id=d, operator_id="ann", assigned_by=AssignedBy.ROUTING, line_id="demo"
    )
    facts = facts.after(assigned).after(
        ParticipantJoined(dialog_id=d, operator_id="bob", actor_id="ann")
    )
    assert facts == DialogFacts("demo", "active", "ann", ("bob",))
    closed = facts.after(DialogClosed(dialog_id=d, reason=CloseReason.SPAM, line_id="demo"))
    assert closed.status == "spam"
    # Reassigning a closed dialog does not reopen it.
    assert closed.after(assigned.model_copy(update={"operator_id": "bob"})).status == "spam"
    moved = facts.after(
        DialogTransferred(dialog_id=d, from_operator_id="ann", to_line_id="vip", actor_id="sue")
    )
    assert moved == DialogFacts("vip", "unassigned", None, ("bob",))
    back = closed.after(ParticipantLeft(dialog_id=d, operator_id="bob", actor_id="bob")).after(
        DialogReopened(dialog_id=d, actor_id="ann", operator_id="ann")
    )
    assert back == DialogFacts("demo", "active", "ann", ())
    note = MessageAppended(
        dialog_id=d,
        message_id=uuid.uuid4(),
        direction=Direction.NOTE,
        author_id="ann",
        text="@bob look",
        mentions=("bob", "zed"),
        channel_id="tg-demo",
        conversation_key="tg-demo:1",
        sent_at=datetime.now(UTC),
    )
    mentioned = back.after(note).after(note.model_copy(update={"mentions": ("zed",)}))
    assert mentioned.mentioned == ("bob", "zed")
    # A customer's or an operator's message mentions nobody.
    said = note.model_copy(update={"direction": Direction.OUT})
    assert back.after(said) == back


async def test_the_sql_twins_agree_with_can_see_and_can_read(engine: AsyncEngine) -> None:
    table = Table(
        f"access_cases_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Text, primary_key=True),
        Column("line_id", Text),
        Column("status", Text),
        Column("assignee_id", Text),
        Column("participants", ARRAY(Text)),
        Column("mentioned", ARRAY(Text)),
        prefixes=["TEMPORARY"],
    )
    cases = {str(i): d for i, d in enumerate(DIALOGS)}
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
        await conn.execute(
            insert(table),
            [
                {
                    "id": key,
                    "line_id": d.line_id,
                    "status": d.status,
                    "assignee_id": d.assignee_id,
                    "participants": list(d.participants),
                    "mentioned": list(d.mentioned),
                }
                for key, d in cases.items()
            ],
        )
        columns = {
            "line_id": table.c.line_id,
            "status": table.c.status,
            "assignee_id": table.c.assignee_id,
            "participants": table.c.participants,
        }
        for s in SCOPES:
            listed = visible_where(s, **columns)
            found = set((await conn.execute(select(table.c.id).where(listed))).scalars())
            assert found == {key for key, d in cases.items() if s.can_see(d)}, s
            readable = readable_where(s, **columns, mentioned=table.c.mentioned)
            found = set((await conn.execute(select(table.c.id).where(readable))).scalars())
            assert found == {key for key, d in cases.items() if s.can_read(d)}, s


async def test_the_lines_sql_twin_agrees_with_sees_lines(engine: AsyncEngine) -> None:
    table = Table(
        f"line_cases_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Text, primary_key=True),
        Column("lines", ARRAY(Text)),
        prefixes=["TEMPORARY"],
    )
    cases = {
        str(i): list(lines)
        for i, lines in enumerate([(), ("demo",), ("vip",), ("demo", "vip"), ("gone",)])
    }
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
        await conn.execute(insert(table), [{"id": k, "lines": v} for k, v in cases.items()])
        for s in SCOPES:
            where = lines_visible_where(s, table.c.lines)
            found = set((await conn.execute(select(table.c.id).where(where))).scalars())
            assert found == {k for k, lines in cases.items() if s.sees_lines(lines)}, s


async def test_the_report_sql_twin_agrees_with_sees_report_figure(engine: AsyncEngine) -> None:
    table = Table(
        f"report_cases_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Text, primary_key=True),
        Column("line_id", Text),
        Column("operator_id", Text),
        prefixes=["TEMPORARY"],
    )
    figures = itertools.product((*LINES, "gone", None), ("ann", "bob", None))
    cases = {str(i): figure for i, figure in enumerate(figures)}
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
        rows = [{"id": k, "line_id": v[0], "operator_id": v[1]} for k, v in cases.items()]
        await conn.execute(insert(table), rows)
        for s in SCOPES:
            where = report_visible_where(
                s, line_id=table.c.line_id, operator_id=table.c.operator_id
            )
            found = set((await conn.execute(select(table.c.id).where(where))).scalars())
            assert found == {k for k, v in cases.items() if s.sees_report_figure(*v)}, s


@pytest.mark.parametrize(
    ("role", "token", "lines", "manage"),
    [
        ("admin", None, [], T),  # every line, and events of no line
        ("admin", None, ["demo", "gone"], T),
        ("admin", ["demo"], ["demo"], T),
        ("admin", ["demo"], ["demo", "vip"], F),  # the token narrows the admin
        ("admin", ["demo"], [], F),  # every line needs every line
        ("supervisor", None, [], F),  # webhooks are the chat admin's only
        ("supervisor", None, ["demo"], F),
        ("operator", None, ["demo"], F),
    ],
)
def test_webhooks_are_managed_by_the_chat_admin_only(
    role: str, token: list[str] | None, lines: list[str], manage: bool
) -> None:
    assert scope(role, token).may_manage_webhooks(lines) is manage

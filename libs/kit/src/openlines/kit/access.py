"""Who may see and act on a dialog: the one access policy of the suite. Pure.

Every service asks this module (dialogs for its API and lists, crm-link for leads, notify for
its pushes, routing for queues and operators), so the answer is the same everywhere.

A `Scope` is what one token may reach, built from the `Principal` and the lines config:

- **operator**: sees the *unassigned* dialogs of the lines they work on (`member_lines`: the
  lines config lists them), and any dialog they are assigned to or take part in (participants),
  whatever its line or status. That is how a transfer, or a colleague's invitation, gives
  access, and why a dialog taken by a colleague disappears (DESIGN §9).
- **supervisor**: sees every dialog of every line, and may take a dialog over.
- **admin** (the chat admin): sees and acts on everything, like a supervisor. The two differ
  only once supervisors get lines of their own (a `supervisors:` list per line): the chat
  admin keeps every line.
- **the token's `lines` claim** narrows any role to those lines, never widens it: with
  `lines: [demo]` a supervisor sees the dialogs of `demo` only, and with `lines: []` nothing but
  the dialogs they are assigned to or take part in.

Three verbs (Uspacy's read-only view, Bitrix24's participants):

- *list* (`can_see`): what appears in lists, counters and pushes: the unassigned dialogs of
  one's lines, the dialogs one is assignee or participant of, everything a supervisor
  supervises.
- *read* (`can_read`): open a dialog by id, its timeline and history: *list*, plus any dialog
  of a line one works on (a colleague's, a closed one: read-only), plus the dialogs one is
  @mentioned in. A transfer away therefore leaves the previous assignee a reader when they
  work on the line, and no longer a member.
- *write* (`can_write`): reply, notes, close, rename...: the assignee and the participants,
  a supervisor of the line (whose write makes them a participant), and an operator of the
  line on an unassigned dialog (a write there is a take: the first reply takes it). The
  dialog itself still refuses what its state forbids (409).

*Try to take* is wider than write: an operator of the line may try to take any open dialog of
it, so that of two operators racing for one dialog the loser gets 409 `already_assigned`, not
an answer that depends on timing. *Transfer* is narrower: the responsible operator (the
assignee) or a supervisor of the line. A dialog one may not read is reported as not found
(404), so its existence does not leak; one read but not written is a 403 `not_allowed`.

**CRM rights** (`CrmRights`, Uspacy's), per operator from the lines config (`crm:` per role,
an operator's own `crm` first), for leads, contacts, companies and deals alike (`CrmFacts`):

- `none`: no CRM at all: every CRM endpoint answers 404 and the dialog JSON has no `crm` block;
- `own`: the entities one is responsible for: created or converted them, or holds (list) one of
  their dialogs, which is how an operator who is assigned a customer's chat later becomes
  responsible; or is @mentioned in one;
- `all`: `own`, plus every entity with a dialog on a line one works on or supervises.

An entity's dialogs are still listed only where the caller may list them (`can_see`), and the
dialog JSON's `crm` block follows the same rule (`sees_crm_of`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from sqlalchemy import ColumnElement, Text, and_, any_, false, func, literal, or_, true
from sqlalchemy.dialects.postgresql import ARRAY

from openlines.events.catalog import (
    CloseReason,
    DialogAssigned,
    DialogClosed,
    DialogOpened,
    DialogReopened,
    DialogStatus,
    DialogTransferred,
    Direction,
    MessageAppended,
    ParticipantJoined,
    ParticipantLeft,
)
from openlines.events.catalog.common import OPEN_STATUSES
from openlines.events.envelope import EventPayload
from openlines.events.lines import LinesConfig
from openlines.kit.http.auth import Principal


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    """The chat admin."""

    @classmethod
    def of(cls, roles: Collection[str]) -> Role:
        """The strongest of a token's roles (unknown roles grant nothing)."""
        for role in (cls.ADMIN, cls.SUPERVISOR):
            if role.value in roles:
                return role
        return cls.OPERATOR


class CrmRights(StrEnum):
    NONE = "none"
    OWN = "own"
    ALL = "all"


@dataclass(frozen=True)
class CrmFacts:
    """What the policy needs to know of a CRM entity (a lead, contact, company or deal)."""

    responsible: Collection[str] = ()
    """The operators who created or converted it."""
    dialogs: Collection[DialogFacts] = ()
    """The dialogs linked to it (its customer's)."""


@dataclass(frozen=True)
class DialogFacts:
    """What the policy needs to know of a dialog."""

    line_id: str
    status: str
    assignee_id: str | None = None
    participants: Collection[str] = ()
    mentioned: Collection[str] = ()
    """Operators @mentioned in its notes: they may read it (not list or write it)."""

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def has_member(self, operator_id: str) -> bool:
        return operator_id == self.assignee_id or operator_id in self.participants

    def after(self, event: EventPayload) -> DialogFacts:
        """The facts once `event` (of this dialog's stream) is applied: how services that
        only consume the dialogs topic (notify, crm-link) keep them."""
        return follow(self, event) or self


def follow(facts: DialogFacts | None, event: EventPayload) -> DialogFacts | None:
    """`facts` moved by one dialogs event; None until the dialog's `DialogOpened`."""
    if isinstance(event, DialogOpened):
        return DialogFacts(line_id=event.line_id, status=DialogStatus.UNASSIGNED)
    if facts is None:
        return None
    is_open = facts.is_open
    if isinstance(event, DialogAssigned):
        # Reassigning a closed dialog does not reopen it (DESIGN §9).
        status = DialogStatus.ACTIVE if is_open else facts.status
        return _handed(facts, event.operator_id, line_id=event.line_id, status=status)
    if isinstance(event, DialogTransferred):
        line_id = event.to_line_id or facts.line_id
        if event.to_operator_id is not None:
            status = DialogStatus.ACTIVE if is_open else facts.status
        else:
            status = DialogStatus.UNASSIGNED if is_open else facts.status
        return _handed(facts, event.to_operator_id, line_id=line_id, status=status)
    if isinstance(event, ParticipantJoined):
        if event.operator_id in facts.participants:
            return facts
        return replace(facts, participants=(*facts.participants, event.operator_id))
    if isinstance(event, ParticipantLeft):
        kept = tuple(p for p in facts.participants if p != event.operator_id)
        return replace(facts, participants=kept)
    if isinstance(event, MessageAppended):
        if event.direction is not Direction.NOTE:
            return facts
        new = [m for m in event.mentions if m not in facts.mentioned]
        return replace(facts, mentioned=(*facts.mentioned, *new)) if new else facts
    if isinstance(event, DialogClosed):
        return replace(
            facts,
            status=DialogStatus.SPAM if event.reason is CloseReason.SPAM else DialogStatus.CLOSED,
        )
    if isinstance(event, DialogReopened):
        line_id = event.line_id or facts.line_id
        return _handed(facts, event.operator_id, line_id=line_id, status=DialogStatus.ACTIVE)
    return facts


def _handed(
    facts: DialogFacts, assignee_id: str | None, *, line_id: str, status: str
) -> DialogFacts:
    """A new assignee: a participant who becomes it is no longer listed as one (as dialogs'
    state keeps them)."""
    participants = tuple(p for p in facts.participants if p != assignee_id)
    return replace(
        facts, line_id=line_id, assignee_id=assignee_id, status=status, participants=participants
    )


# The events that move what *list* and *write* depend on: a consumer that keeps `DialogFacts`
# for those (notify, crm-link) subscribes to these. Only *read* also needs the mentions of
# `MessageAppended` notes (READ_FACT_EVENTS), which would put every message on such consumers.
FACT_EVENTS: tuple[type[EventPayload], ...] = (
    DialogOpened,
    DialogAssigned,
    DialogTransferred,
    ParticipantJoined,
    ParticipantLeft,
    DialogClosed,
    DialogReopened,
)
READ_FACT_EVENTS: tuple[type[EventPayload], ...] = (*FACT_EVENTS, MessageAppended)


@dataclass(frozen=True)
class Scope:
    """What one principal may reach (see the module's docstring)."""

    operator_id: str
    role: Role = Role.OPERATOR
    member_lines: frozenset[str] = frozenset()
    """Lines the operator works on (lines config ∩ token): their queue is theirs to take."""
    supervised_lines: frozenset[str] | None = field(default_factory=frozenset)
    """Lines where every dialog is visible: None is every line, including ones added later."""
    crm: CrmRights = CrmRights.OWN

    @classmethod
    def of(
        cls, principal: Principal, config: LinesConfig, *, crm: CrmRights | None = None
    ) -> Scope:
        role = Role.of(principal.roles)
        member = frozenset(line.id for line in config.lines_of(principal.operator_id))
        supervised: frozenset[str] | None = None if role is not Role.OPERATOR else frozenset()
        if principal.lines is not None:  # the token narrows, never widens
            member &= principal.lines
            supervised = principal.lines if supervised is None else supervised & principal.lines
        return cls(
            operator_id=principal.operator_id,
            role=role,
            member_lines=member,
            supervised_lines=supervised,
            crm=crm or CrmRights(config.crm_right(principal.operator_id, role.value)),
        )

    # -- lines -------------------------------------------------------------------------------

    @property
    def is_supervisor(self) -> bool:
        """Supervisors and chat admins: they may take a dialog over, reply on any they see,
        manage the presence of the operators of their lines."""
        return self.role is not Role.OPERATOR

    @property
    def sees_all_lines(self) -> bool:
        return self.supervised_lines is None

    def supervises(self, line_id: str | None) -> bool:
        """Every dialog of this line is visible."""
        if self.supervised_lines is None:
            return True
        return line_id is not None and line_id in self.supervised_lines

    def sees_queue_of(self, line_id: str) -> bool:
        """The line's unassigned dialogs (its waiting queue) are visible."""
        return line_id in self.member_lines or self.supervises(line_id)

    def queue_lines(self, all_lines: Iterable[str]) -> list[str]:
        """Of `all_lines`, in their order, those whose queue is visible."""
        return [line for line in all_lines if self.sees_queue_of(line)]

    # -- dialogs -----------------------------------------------------------------------------

    def can_see(self, dialog: DialogFacts) -> bool:
        """*list*: lists, counters, pushes."""
        if dialog.has_member(self.operator_id):
            return True
        if self.supervises(dialog.line_id):
            return True
        return dialog.status == DialogStatus.UNASSIGNED and dialog.line_id in self.member_lines

    def can_read(self, dialog: DialogFacts) -> bool:
        """*read*: open it by id (its JSON, timeline, history), read-only where not written."""
        return (
            self.can_see(dialog)
            or dialog.line_id in self.member_lines
            or self.operator_id in dialog.mentioned
        )

    def can_write(self, dialog: DialogFacts) -> bool:
        """*write*: commands on the dialog; its own state may still refuse them (409). The
        same dialogs as *list* today, for other reasons: one's own, a supervised line's, and
        an unassigned one of one's line (where a write is a take)."""
        if dialog.has_member(self.operator_id) or self.supervises(dialog.line_id):
            return True
        return dialog.status == DialogStatus.UNASSIGNED and dialog.line_id in self.member_lines

    def can_try_take(self, dialog: DialogFacts) -> bool:
        """`take` answers 409, not 404, to an operator of the line on an open dialog that
        someone else got first: who wins a race must not turn into an existence check."""
        return (dialog.is_open and dialog.line_id in self.member_lines) or self.can_write(dialog)

    def can_transfer(self, dialog: DialogFacts) -> bool:
        """Hand it on (to an operator, a line, the queue): the responsible operator or a
        supervisor of its line (RetailCRM)."""
        return dialog.assignee_id == self.operator_id or self.supervises(dialog.line_id)

    def can_join(self, dialog: DialogFacts) -> bool:
        """Join it as a participant oneself: an operator of its line, or its supervisor."""
        return dialog.line_id in self.member_lines or self.supervises(dialog.line_id)

    def can_invite(self, dialog: DialogFacts) -> bool:
        """Make someone else a participant: a supervisor of its line."""
        return self.is_supervisor and self.supervises(dialog.line_id)

    # -- operators ---------------------------------------------------------------------------

    def may_manage(self, operator_id: str, operator_lines: Iterable[str]) -> bool:
        """Set an operator's presence: one's own, or a supervisor's for the operators of the
        lines they supervise."""
        if operator_id == self.operator_id:
            return True
        if not self.is_supervisor:
            return False
        return self.sees_all_lines or any(self.supervises(line) for line in operator_lines)

    def sees_operator(self, operator_id: str, operator_lines: Iterable[str]) -> bool:
        """Operators see themselves and the colleagues of the lines whose queue they see."""
        if operator_id == self.operator_id or self.sees_all_lines:
            return True
        return any(self.sees_queue_of(line) for line in operator_lines)

    # -- resources of lines (quick replies) -----------------------------------------------

    def sees_lines(self, line_ids: Iterable[str]) -> bool:
        """Something shared by these lines (a quick reply): seen by those who work on or
        supervise one of them."""
        return any(self.sees_queue_of(line) for line in line_ids)

    def may_manage_quick_replies(self, line_ids: Iterable[str]) -> bool:
        """Write the quick replies of these lines: a supervisor or chat admin of every one."""
        wanted = list(line_ids)
        return self.is_supervisor and bool(wanted) and all(map(self.supervises, wanted))

    # -- outgoing webhooks (notify) ---------------------------------------------------------

    @property
    def manages_webhooks(self) -> bool:
        """Some webhook subscriptions at all (the API answers 403 to anyone else)."""
        return self.role is Role.ADMIN

    def may_manage_webhooks(self, line_ids: Iterable[str]) -> bool:
        """Create, read, change a webhook subscription of these lines (none: every line, and
        the events of no line): the chat admin only, of every line it names; a webhook of
        every line needs every line (a token's `lines` claim narrows the admin)."""
        if not self.manages_webhooks:
            return False
        wanted = list(line_ids)
        return all(map(self.supervises, wanted)) if wanted else self.sees_all_lines

    # -- CRM -----------------------------------------------------------------------------

    def may_use_crm(self) -> bool:
        return self.crm is not CrmRights.NONE

    def can_see_crm(self, entity: CrmFacts) -> bool:
        """A lead, contact, company or deal (see CRM rights in the module's docstring)."""
        if self.crm is CrmRights.NONE:
            return False
        if self.operator_id in entity.responsible:
            return True
        if any(self._owns_crm_of(d) for d in entity.dialogs):
            return True
        if self.crm is CrmRights.ALL:
            return self.sees_all_lines or any(self.sees_queue_of(d.line_id) for d in entity.dialogs)
        return False

    def sees_crm_of(self, dialog: DialogFacts) -> bool:
        """The dialog JSON's `crm` block: what the dialog is linked to is the caller's to see."""
        if self.crm is CrmRights.NONE:
            return False
        if self.crm is CrmRights.ALL:
            return self.can_read(dialog)
        return self._owns_crm_of(dialog)

    def _owns_crm_of(self, dialog: DialogFacts) -> bool:
        return self.can_see(dialog) or self.operator_id in dialog.mentioned

    # -- reports -------------------------------------------------------------------------

    def sees_report_figure(self, line_id: str | None, operator_id: str | None) -> bool:
        """A figure of the reports (analytics), by the line and the operator it belongs to:
        supervisors and chat admins see those of the lines they supervise, an operator only
        their own."""
        if self.is_supervisor:
            return self.supervises(line_id)
        return operator_id == self.operator_id


def visible_where(
    scope: Scope,
    *,
    line_id: ColumnElement[str],
    status: ColumnElement[str],
    assignee_id: ColumnElement[str | None],
    participants: ColumnElement[list[str]],
) -> ColumnElement[bool]:
    """SQL twin of `Scope.can_see` (*list*) over a table's columns (`participants` a text[]),
    for list queries; tested against `can_see` on the same table of cases."""
    if scope.sees_all_lines:
        return true()
    reach: list[ColumnElement[bool]] = [
        assignee_id == scope.operator_id,
        literal(scope.operator_id) == any_(participants),
    ]
    if scope.supervised_lines:
        reach.append(line_id.in_(sorted(scope.supervised_lines)))
    if scope.member_lines:
        reach.append(
            and_(status == DialogStatus.UNASSIGNED, line_id.in_(sorted(scope.member_lines)))
        )
    return or_(*reach) if reach else false()


def lines_visible_where(scope: Scope, lines: ColumnElement[list[str]]) -> ColumnElement[bool]:
    """SQL twin of `Scope.sees_lines` over a text[] column of line ids."""
    if scope.sees_all_lines:
        return func.cardinality(lines) > 0
    reach = sorted(scope.member_lines | (scope.supervised_lines or frozenset()))
    return lines.overlap(literal(reach, ARRAY(Text))) if reach else false()


def readable_where(
    scope: Scope,
    *,
    line_id: ColumnElement[str],
    status: ColumnElement[str],
    assignee_id: ColumnElement[str | None],
    participants: ColumnElement[list[str]],
    mentioned: ColumnElement[list[str]],
) -> ColumnElement[bool]:
    """SQL twin of `Scope.can_read` (e.g. a customer's earlier dialogs one may open); tested
    against `can_read` on the same table of cases."""
    listed = visible_where(
        scope, line_id=line_id, status=status, assignee_id=assignee_id, participants=participants
    )
    reach: list[ColumnElement[bool]] = [listed, literal(scope.operator_id) == any_(mentioned)]
    if scope.member_lines:
        reach.append(line_id.in_(sorted(scope.member_lines)))
    return or_(*reach)


def report_visible_where(
    scope: Scope, *, line_id: ColumnElement[str], operator_id: ColumnElement[str | None]
) -> ColumnElement[bool]:
    """SQL twin of `Scope.sees_report_figure` over a table's columns."""
    if not scope.is_supervisor:
        return operator_id == scope.operator_id
    if scope.sees_all_lines:
        return true()
    supervised = sorted(scope.supervised_lines or ())
    return line_id.in_(supervised) if supervised else false()

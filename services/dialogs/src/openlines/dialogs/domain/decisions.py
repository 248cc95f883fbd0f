"""The Dialog aggregate's decisions: each looks at the state and returns the events to record.

A decision returns the events (possibly none: the request is already satisfied) or raises a
`DomainError` (`refusals`); it never changes the state itself (`apply`, in `state`, does). No
I/O here. The decisions are grouped by concern: `handover` (who holds the dialog), `messages`
(the timeline), `marks` (read, title, pin), `crm` and `feedback` (ratings, classification);
their shared rules are `rules`.
"""

from __future__ import annotations

from openlines.dialogs.domain.crm import Crm
from openlines.dialogs.domain.feedback import Feedback
from openlines.dialogs.domain.marks import Marks
from openlines.dialogs.domain.messages import Messages


class Dialog(Messages, Marks, Crm, Feedback):
    """The dialog with its decisions (its state and `apply` are `DialogState`'s)."""

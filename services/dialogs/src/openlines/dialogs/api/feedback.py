"""Leeloo's rating and classification: `POST …/rating` (the operator rates the customer) and
`POST …/classify` (with the values of the dialog's line). Either is allowed to whoever may
write the dialog, also once it is closed (that is when it is usually done)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from pydantic import Field

from openlines.dialogs.access import Viewer
from openlines.dialogs.api.base import BASE, DIALOG_REFUSALS, ApiBase
from openlines.dialogs.domain import Dialog, Load
from openlines.dialogs.views import DialogView
from openlines.events.envelope import EventPayload
from openlines.events.limits import REASON_MAX, REASONS_MAX
from openlines.events.lines import Classification, Csat
from openlines.kit.http import routes

NOT_WRITABLE = "not_allowed: the caller reads the dialog but may not write it (join it first)"


class RatingBody(routes.StrictModel):
    score: int = Field(description="1 to the line's `csat.scale` (5 by default)")
    comment: str | None = Field(default=None, max_length=REASON_MAX)


class ClassifyBody(routes.StrictModel):
    type: str | None = Field(default=None, max_length=64, description="one of the line's types")
    reasons: list[str] = Field(
        default_factory=list, max_length=REASONS_MAX, description="any of the line's reasons"
    )
    status: str | None = Field(
        default=None, max_length=64, description="one of the line's statuses"
    )


class FeedbackEndpoints(ApiBase):
    @routes.post(
        BASE + "/{id}/rating",
        summary="Rate the customer (the operator's rating: `DialogRated` by operator)",
        body=RatingBody,
        responses={
            200: DialogView,
            **DIALOG_REFUSALS,
            403: NOT_WRITABLE,
            422: "score_out_of_scale: not 1 to the line's csat.scale",
        },
    )
    async def rate(self, request: web.Request, *, body: RatingBody) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            return dialog.rate_by_operator(
                viewer.operator_id,
                body.score,
                scale=self._csat(dialog).scale,
                comment=body.comment,
            )

        return await self.act(request, decide)

    @routes.post(
        BASE + "/{id}/classify",
        summary="Classify the dialog with its line's types, reasons and statuses",
        body=ClassifyBody,
        responses={
            200: DialogView,
            **DIALOG_REFUSALS,
            403: NOT_WRITABLE,
            422: (
                "unknown_classification_type, unknown_classification_reason,"
                " unknown_classification_status: not in the line's classification config;"
                " classification_not_configured"
            ),
        },
    )
    async def classify(self, request: web.Request, *, body: ClassifyBody) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            line = self.lines.line(dialog.line_id)
            return dialog.classify(
                viewer.operator_id,
                line.classification if line is not None else Classification(),
                type=body.type,
                reasons=body.reasons,
                status=body.status,
            )

        return await self.act(request, decide)

    def _csat(self, dialog: Dialog) -> Csat:
        line = self.lines.line(dialog.line_id)
        return line.csat if line is not None else Csat()

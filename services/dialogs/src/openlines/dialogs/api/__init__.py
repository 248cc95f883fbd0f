"""The operator API: `/api/v1/dialogs...` (JWT; access per `openlines.kit.access`).

One class, `DialogsApi`, made of one mixin per group of endpoints (each a module here, on
`base.ApiBase`): the app installs it and the OpenAPI document lists it, so a new group is a
module and one base class below.
"""

from openlines.dialogs.api.base import ApiBase
from openlines.dialogs.api.core import CoreEndpoints, outbound_message_id
from openlines.dialogs.api.edit import EditEndpoints
from openlines.dialogs.api.feedback import FeedbackEndpoints
from openlines.dialogs.api.quick import QuickEndpoints
from openlines.dialogs.api.reading import ReadingEndpoints
from openlines.dialogs.api.transfer import TransferEndpoints


class DialogsApi(
    TransferEndpoints,
    CoreEndpoints,
    ReadingEndpoints,
    EditEndpoints,
    QuickEndpoints,
    FeedbackEndpoints,
    ApiBase,
):
    """Every endpoint of the dialogs service."""


__all__ = ["ApiBase", "DialogsApi", "outbound_message_id"]

"""outbox: NOTIFY the relay from a statement trigger instead of a client round trip

Revision ID: kit0002
Revises: kit0001
"""

from alembic import op

revision = "kit0002"
down_revision = "kit0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Channel openlines_outbox_<schema> (see openlines.kit.outbox.notify_channel). NOTIFY is
    # delivered at commit, so the relay only ever wakes for committed rows.
    op.execute(
        """
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('openlines_outbox_' || TG_TABLE_SCHEMA, '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )

from openlines.kit.db.alembic_env import run

run()

"""The suite's tests get the kit's fixtures (real broker and Postgres, topics, schemas).

Loaded here rather than through a `pytest11` entry point of openlines-kit: an entry point
registers the plugin wherever the kit is installed, and the kit's runtime does not carry the
test infrastructure (it is the `openlines-kit[testing]` extra, in the dev group).
"""

pytest_plugins = ["openlines.kit.testing.plugin"]

"""pytest plugin: real broker and Postgres fixtures."""

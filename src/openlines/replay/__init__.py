"""Replay and export: rebuild read models from the topics, export the topics as Parquet."""

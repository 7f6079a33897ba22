"""Prefect flows of the pipeline: ingest (channel APIs → landing) and the steps after it."""

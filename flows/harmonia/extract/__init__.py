"""Extraction: channel APIs → the immutable landing zone, incrementally.

``sources`` (the sources as data), ``paginators`` (pagination and auth), ``http`` (sessions,
retries, garbage detection), ``landing`` (DuckDB tables, one transaction per page),
``state`` (watermarks) and ``runner`` (one source's run). The Prefect flow that runs every
source concurrently is ``harmonia.pipeline.ingest``.
"""

"""Validation between landing and dbt: GX suites per source, quarantine, and the DQ record.

Entry points: the Prefect flow ``harmonia.validate.flow.validate`` (CLI ``harmonia validate``),
``harmonia.validate.suites.write_suites`` (CLI ``harmonia write-suites``) which regenerates the
committed suites in ``expectations/`` from ``harmonia.validate.definitions``. See
``docs/data-quality.md``.
"""

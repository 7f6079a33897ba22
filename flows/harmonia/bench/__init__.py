"""Benchmarks of the whole pipeline (``harmonia bench``): see ``harmonia.bench.run`` and
``docs/performance.md``."""

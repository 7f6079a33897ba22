"""harmonia: omnichannel customer-service data pipeline (channel APIs -> landing -> GX -> dbt)."""

__version__ = "0.1.0"

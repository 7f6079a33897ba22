"""Typed settings for harmonia, read from the environment (prefix ``HARMONIA_``) or a .env file.

Every path the pipeline writes to and every credential it reads lives here, so nothing else
reads ``os.environ`` directly. Secrets are ``SecretStr`` and never reach a log line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

REPO_ROOT = Path(__file__).resolve().parents[2]

# a DuckDB memory size as the settings accept it ("1GB", "512MB", "1.5GiB"): number, unit
_SIZE = r"^(\d+(?:\.\d+)?)\s*([KMGT]i?B)$"


class Credentials(BaseSettings):
    """Per-source credentials. Defaults are the demo APIs' own (documented, not secret)."""

    model_config = SettingsConfigDict(env_prefix="HARMONIA_", env_file=".env", extra="ignore")

    voice_token: SecretStr = SecretStr("demo-voice-token")
    # Amazon Connect: the demo takes a Bearer token; the real service takes AWS SigV4.
    voice_auth: Literal["bearer", "sigv4"] = "bearer"
    voice_instance_id: str = "9f0c2d1e-0000-4000-8000-00000000c0de"
    voice_aws_access_key_id: str = ""
    voice_aws_secret_access_key: SecretStr | None = None
    voice_aws_session_token: SecretStr | None = None
    voice_aws_region: str = "us-east-1"
    sms_account_sid: str = "AC00000000000000000000000000000000"
    sms_auth_token: SecretStr = SecretStr("demo-sms-auth-token")
    email_user: str = "api@harmonia.example"
    email_api_token: SecretStr = SecretStr("demo-email-api-token")
    chat_token: SecretStr = SecretStr("demo-chat-token")
    messenger_page_id: str = "104000000000001"
    messenger_access_token: SecretStr = SecretStr("demo-messenger-page-token")
    surveys_api_key: SecretStr = SecretStr("demo-surveys-api-key")
    crm_token: SecretStr = SecretStr("demo-crm-private-app-token")


class Settings(BaseSettings):
    """Where things live and how the pipeline behaves."""

    model_config = SettingsConfigDict(env_prefix="HARMONIA_", env_file=".env", extra="ignore")

    home: Path = Field(default=REPO_ROOT / "var", description="root of everything a run writes")
    demo_host: str = "127.0.0.1"
    demo_port: int = 8765
    demo_seed: int = 42
    demo_customers: int = 2000
    # DuckDB's memory cap on the connections the pipeline writes through (landing; dbt's
    # profile reads the same variable; validate takes the cap below): past it DuckDB spills to
    # disk or evicts cached blocks instead of growing towards 80 % of the machine's RAM.
    # 768MB: a 5M-contact history builds at it (at 640MB too), ~1.5 % slower than at 1GB,
    # and the process peaks ~180-250 MiB lower (docs/dbt.md, "Memory"); raise it on a bigger
    # machine for speed headroom.
    duckdb_memory_limit: str = Field(default="768MB", pattern=_SIZE)
    # DuckDB's cap while validating; unset, half of duckdb_memory_limit. Validation holds a
    # pandas slice, Great Expectations and the phone cache beside DuckDB, and DuckDB only
    # reads the slice's JSON and appends its rows, so it needs less: validate alone over a 1M
    # landing peaked at 1,215 MiB instead of 1,531 in the same time, over a 5M landing at
    # ~1,550 instead of ~2,000 for ~6 % more time (docs/performance.md, eighteenth round).
    validate_duckdb_memory_limit: str | None = Field(default=None, pattern=_SIZE)

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def gx_output_dir(self) -> Path:
        return self.home / "gx"

    @property
    def demo_base_url(self) -> str:
        return f"http://{self.demo_host}:{self.demo_port}"


def get_settings() -> Settings:
    return Settings()


def limit_duckdb_memory(conn: DuckDBPyConnection, limit: str | None = None) -> None:
    """Cap ``conn``'s database at ``limit``, by default ``HARMONIA_DUCKDB_MEMORY_LIMIT`` (768MB).
    Both come checked by the settings' size pattern, never raw from the environment."""
    conn.execute(f"set memory_limit = '{limit or get_settings().duckdb_memory_limit}'")


def validate_memory_limit(settings: Settings | None = None) -> str:
    """DuckDB's cap while validating: ``HARMONIA_VALIDATE_DUCKDB_MEMORY_LIMIT`` if set, else
    half of ``HARMONIA_DUCKDB_MEMORY_LIMIT`` in its own unit ("1GB" -> "0.5GB")."""
    settings = settings or get_settings()
    if settings.validate_duckdb_memory_limit:
        return settings.validate_duckdb_memory_limit
    size = re.fullmatch(_SIZE, settings.duckdb_memory_limit)
    assert size is not None  # the field's pattern guarantees it
    return f"{float(size[1]) / 2:g}{size[2]}"


def text_compression(conn: DuckDBPyConnection) -> str:
    """The column clause for a table's raw JSON text in ``conn``'s database file: zstd where
    the file's storage version has it (1.2.0 and later; DuckDB refuses the hint in older
    files), else nothing (DuckDB's default, FSST).

    The raw JSON is most of the warehouse (``landing.records``, ``raw.*``, the quarantine):
    zstd stores it in about a fifth of FSST's space and costs less to write (386k demo records
    landed alone: 707 -> 153 MiB, 6.4 -> 5.3 s; ``docs/performance.md``, fifteenth round).
    """
    row = conn.execute(
        "select tags['storage_version'] from duckdb_databases() "
        "where database_name = current_database()"
    ).fetchone()
    numbers = tuple(int(n) for n in re.findall(r"\d+", (row[0] or "") if row else "")[:3])
    return " using compression zstd" if numbers and numbers >= (1, 2, 0) else ""

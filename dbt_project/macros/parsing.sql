{#- Vendor timestamp formats -> timestamp with time zone (UTC). Unparseable -> null: such
    records are quarantined by Great Expectations before they reach raw.*, so null here only
    means "absent". -#}

{% macro from_epoch(expr) -%}
    to_timestamp(try_cast({{ expr }} as double))
{%- endmacro %}

{% macro from_rfc2822(expr) -%}
    try_strptime({{ expr }}, '%a, %d %b %Y %H:%M:%S %z')
{%- endmacro %}

{% macro from_iso8601(expr) -%}
    try_cast({{ expr }} as timestamp with time zone)
{%- endmacro %}

{#- Identifiers, normalized before anything joins on them (model spec section 2). -#}

{% macro normalized_email(expr) -%}
    nullif(lower(trim({{ expr }})), '')
{%- endmacro %}

{% macro normalized_phone(expr) -%}
    normalize_phone({{ expr }}, '{{ var("default_phone_region") }}')
{%- endmacro %}

{#- The fields of a raw row's JSON as VARCHAR columns (`fields`: column name -> JSON path, each
    read exactly as `raw_json ->> path`), next to the row's other columns; raw_json itself is
    dropped. One `json_extract_string` call with the list of paths parses each document once.
    A separate `->>` per field parsed it once per field, and DuckDB kept the parses of a chunk
    until the chunk was done, counted against memory_limit: ~280 MiB for one 2,048-row chunk
    of Intercom conversations (2 KiB documents, 20 fields), per thread; stg_chat__conversations
    alone peaked at 1.2 GiB at 100k contacts and failed under a 512MB limit (docs/dbt.md
    "Memory"). One parse per document also makes staging faster. -#}
{% macro parse_json(relation, fields) -%}
    select
        * exclude (raw_json, _fields),
        {%- for name in fields %}
        _fields[{{ loop.index }}] as {{ name }},
        {%- endfor %}
    from (
        select
            *,
            json_extract_string(raw_json, [
                {%- for path in fields.values() %}'{{ path }}'{{ ', ' if not loop.last }}{% endfor -%}
            ]) as _fields,
        from {{ relation }}
    )
{%- endmacro %}

{#- The raw rows (every column, raw_json included) of the newest version of each record in
    `relation`, a raw.* table: `version_ts` is the vendor's version field parsed to a timestamp
    (string order of e.g. RFC 2822 dates is not time order); among equal versions the most
    recently validated load wins, then the latest extraction.

    The version field's text is the row's `record_version`: landing read it from the record
    (the source's `RecordSpec.version_field`, the same field each staging model names), so the
    window parses that column, not the JSON (chat at 1M: 0.93 -> 0.05 s; every raw row at 1M
    gives the same timestamp either way). A record without a usable version has a `~sha1:`
    digest there, which parses to null, as its absent field did.

    Memory (docs/dbt.md "Memory"): the newest version is chosen on narrow rows (rowid, record
    id, version, validated_at, extracted_at), so the window sorts a few dozen bytes per version,
    not the JSON documents, and spills to disk under DuckDB's memory_limit; only the winners'
    documents are then read, by rowid (a semi join whose build side is the winners' rowids),
    and parsed once each by parse_json. `relation` must be a table (rowid).

    Staging models are incremental (delete+insert on their unique_key, docs/dbt.md "Incremental
    staging"). On an incremental run only the raw rows validated since the model was last built
    are read (`validated_at >` the newest validated_at in the model: every row validated after
    the last build is newer than that, since runs hold the warehouse lock and validation
    precedes dbt; the rows stamped with that newest value were all committed in one validation
    slice before that build, so none is missed), so no older raw row is decompressed or parsed
    again. The newest of them per record is a candidate; `keep_newer_versions` then drops a
    candidate that loses to the row the model already keeps. An empty model reads everything.
    -#}
{% macro validated_since_last_build() -%}
    {#- True for a raw row validated after the newest validated_at of the staging model being
        built (see latest_version); only for incremental runs. -#}
    validated_at > (
        select coalesce(max(validated_at), '-infinity'::timestamptz) from {{ this }}
    )
{%- endmacro %}

{% macro latest_version(relation, version_ts) -%}
    {%- set since = validated_since_last_build() -%}
    select *
    from {{ relation }}
    where
        {% if is_incremental() -%} {{ since }} and {% endif -%}
        rowid in (
        select version_row
        from (
            select
                rowid as version_row,
                record_id,
                {{ version_ts }} as version_ts,
                validated_at,
                extracted_at,
            from {{ relation }}
            {%- if is_incremental() %}
            where {{ since }}
            {%- endif %}
        )
        qualify row_number() over (
            partition by record_id
            order by version_ts desc nulls last, validated_at desc nulls last, extracted_at desc
        ) = 1
    )
{%- endmacro %}

{#- The staged rows of `relation` (a CTE with the model's unique_key, `version_column` = the
    parsed version and validated_at) that should replace what the model holds: on a full build
    all of them; on an incremental run those whose record is new, or whose version beats the
    kept one in latest_version's order (newer version, nulls lowest; on an equal version, a later
    validation). A late-arriving older version therefore never displaces a newer one, and a
    full tie keeps the row already chosen. -#}
{% macro keep_newer_versions(relation, version_column) -%}
    {%- set key = config.get('unique_key') -%}
    select {{ relation }}.*
    from {{ relation }}
    {%- if is_incremental() %}
    left join {{ this }} as kept
        on {{ relation }}.{{ key }} = kept.{{ key }}
    where
        kept.{{ key }} is null
        or coalesce({{ relation }}.{{ version_column }}, '-infinity'::timestamptz)
        > coalesce(kept.{{ version_column }}, '-infinity'::timestamptz)
        or (
            coalesce({{ relation }}.{{ version_column }}, '-infinity'::timestamptz)
            = coalesce(kept.{{ version_column }}, '-infinity'::timestamptz)
            and {{ relation }}.validated_at > kept.validated_at
        )
    {%- endif %}
{%- endmacro %}

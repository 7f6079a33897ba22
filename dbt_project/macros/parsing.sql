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

{#- Keeps the newest version of each record: `version_ts` is the vendor's version field
    parsed to a timestamp (string order of e.g. RFC 2822 dates is not time order); among equal
    versions the most recently validated load wins.

    Staging models are incremental (delete+insert on their unique_key, docs/dbt.md "Incremental
    staging"). On an incremental run only the raw rows validated since the model was last built
    are read (`validated_at >=` the newest validated_at in the model: every row validated after
    the last build is newer than that, since runs hold the warehouse lock and validation
    precedes dbt; `>=` re-reads the boundary rows rather than risk missing one), so no older
    raw row is decompressed or parsed again. The newest of them per record is a candidate;
    `keep_newer_versions` then drops a candidate that loses to the row the model already keeps.
    An empty model reads everything. -#}
{% macro latest_version(relation, version_ts) -%}
    select *
    from {{ relation }}
    {%- if is_incremental() %}
    where validated_at >= (
        select coalesce(max(validated_at), '-infinity'::timestamptz) from {{ this }}
    )
    {%- endif %}
    qualify row_number() over (
        partition by record_id
        order by {{ version_ts }} desc nulls last, validated_at desc nulls last, extracted_at desc
    ) = 1
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

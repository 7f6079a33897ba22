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
    versions the most recently validated load wins. -#}
{% macro latest_version(relation, version_ts) -%}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by record_id
        order by {{ version_ts }} desc nulls last, validated_at desc nulls last, extracted_at desc
    ) = 1
{%- endmacro %}

-- One row: how this build runs the identity and request chains (docs/dbt.md, "The scoped identity
-- chain"). is_full when there is no complete earlier build to scope against (--full-refresh, or a
-- table of the chains is missing), or when a setting their rows depend on changed since the last
-- build: the identifier_blocklist, topic_map, topics and channel_costs seeds, or a var read
-- between staging and the scoped facts (a var added there must be added to the list below). Those
-- change rows of records that did not change, so a scoped build would miss them. Full too when the
-- last build did not finish the chain: its completed stays false until int_identifiers_observed,
-- the chain's last table, is written (its post_hook, in the same transaction), and a build stopped
-- half way has replaced some tables and not others, so the old state the scope models read is no
-- longer one build's. When is_full, every model of the chain recomputes all of its rows. Decided
-- here once, before any table of the chain changes, and read by the others (macro
-- identity_scope_is_full), so they all take the same path.
{% set last_build = built_relation('int_identity_build') %}
{% set last_observed = built_relation('int_identifiers_observed') %}
{% set last_columns = (
    adapter.get_columns_in_relation(last_build) | map(attribute='name') | list
) if last_build is not none else [] %}
with

responses as (
    select * from {{ ref('stg_surveys__responses') }}
),

settings as (
    select md5(concat_ws(
        chr(31),
        {% for seed in ['identifier_blocklist', 'topic_map', 'topics', 'channel_costs'] -%}
        (select string_agg(s::varchar, chr(30) order by s::varchar) from {{ ref(seed) }} as s),
        {% endfor -%}
        {% for name in [
            'max_identifier_degree',
            'request_window_hours',
            'sms_keyword_pattern',
            'protocol_pattern',
            'thread_closing_prefix',
            'thread_resolved_marker',
            'messenger_page_id',
            'messenger_bot_tag',
            'sms_agent_messaging_service',
        ] -%}
        '{{ name }}=' || {{ dbt.string_literal(var(name) | string) }},
        {% endfor -%}
    )) as settings_fingerprint,
),

final as (
    select
        {{ identity_full_rebuild() }}
        {%- if last_build is none %}
        {#- the first build: identity_full_rebuild() is true already #}
        {%- elif 'responses_validated_at' in last_columns %}
        or settings.settings_fingerprint is distinct from (
            select max(settings_fingerprint) from {{ last_build }}
        )
        or not (select bool_and(completed) from {{ last_build }})
        {%- else %}
        {#- built by a harmonia without the fingerprint, the completion mark or the survey
            watermark: nothing to compare with #}
        or true
        {%- endif %} as is_full,
        settings.settings_fingerprint,
        -- the survey answers the scoped facts take as changed (int_mart_scope_contacts): those
        -- validated after the newest the last build saw
        -- (none yet: -infinity; a build without the column is full, above)
        {%- if 'responses_validated_at' in last_columns %}
        (select max(responses_validated_at) from {{ last_build }}) as responses_since,
        {%- else %}
        '-infinity'::timestamptz as responses_since,
        {%- endif %}
        coalesce(
            (select max(validated_at) from responses), '-infinity'::timestamptz
        ) as responses_validated_at,
        -- the contacts and CRM rows the scoped build takes as changed: validated after the
        -- newest of their kind in int_identifiers_observed, the last complete build's
        -- (int_identity_changed_records; the SMS, Messenger and union models read the sources
        -- with contacts_since)
        {%- if last_observed is not none %}
        (
            select coalesce(max(validated_at), '-infinity'::timestamptz)
            from {{ last_observed }}
            where record_kind = 'contact'
        ) as contacts_since,
        (
            select coalesce(max(validated_at), '-infinity'::timestamptz)
            from {{ last_observed }}
            where record_kind = 'crm'
        ) as crm_since,
        {%- else %}
        '-infinity'::timestamptz as contacts_since,
        '-infinity'::timestamptz as crm_since,
        {%- endif %}
        false as completed,
    from settings
)

select * from final

-- The scope nodes of the scoped identity rebuild (docs/dbt.md, "The scoped identity chain"):
-- every identifier a changed record (int_identity_changed_records) shows now or showed in the
-- last build, including one no record shows any more. Only their rows in
-- int_identifiers_screened, and only edges with an end among them, can change: any other
-- node's records are unchanged. Empty when the build is full (int_identity_build), since the
-- chain then replaces everything.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_contacts_unioned') }}
-- depends_on: {{ ref('stg_crm__contacts') }}
with

changed_records as not materialized (
    select * from {{ ref('int_identity_changed_records') }}
),

{% if full %}

final as (
    select null::varchar as identifier_key, null::bigint as node_id,
    where false
)

{% else %}

current_observations as (
    {{ changed_record_observations('changed_records') }}
),

last_observed as (
    select * from {{ built_relation('int_identifiers_observed') }}
),

keys as (
    select identifier_key from current_observations
    union
    select identifier_key
    from last_observed
    where record_key in (select record_key from changed_records)
),

final as (
    select
        identifier_key,
        {{ node_id('identifier_key') }} as node_id,
    from keys
)

{% endif %}

select * from final

-- The observations (record, identifier) the scoped identity rebuild works on (docs/dbt.md,
-- "The scoped identity chain"): every record that shows a scope node
-- (int_identity_scope_nodes, node_in_scope here), as it is now: the changed records from
-- staging, the others from int_identifiers_observed (unchanged, so the same). That is what a
-- scope node's record count and degree are counted over. On a full build
-- (int_identity_build.is_full), every observation, all in scope.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_contacts_unioned') }}
-- depends_on: {{ ref('stg_crm__contacts') }}
-- depends_on: {{ ref('int_identity_scope_nodes') }}
with

changed_records as not materialized (
    select * from {{ ref('int_identity_changed_records') }}
),

{% if full %}

final as (
    select
        *,
        {{ node_id('identifier_key') }} as node_id,
        true as node_in_scope,
    from ({{ identifier_observations(ref('int_contacts_unioned'), ref('stg_crm__contacts')) }})
)

{% else %}

scope_nodes as not materialized (
    select * from {{ ref('int_identity_scope_nodes') }}
),

current_observations as (
    {{ changed_record_observations('changed_records') }}
),

last_observed as not materialized (
    select * from {{ built_relation('int_identifiers_observed') }}
),

unchanged_scope_records as (
    select distinct record_key
    from last_observed
    where identifier_key in (select identifier_key from scope_nodes)
        and record_key not in (select record_key from changed_records)
),

observations as (
    select * from current_observations
    union all by name
    select *
    from last_observed
    where record_key in (select record_key from unchanged_scope_records)
),

final as (
    select
        *,
        {{ node_id('identifier_key') }} as node_id,
        identifier_key in (select identifier_key from scope_nodes) as node_in_scope,
    from observations
)

{% endif %}

select * from final

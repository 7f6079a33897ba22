-- The contacts whose row in int_contacts_identified the scoped identity rebuild replaces
-- (docs/dbt.md, "The scoped identity chain"): the changed and gone contacts
-- (int_identity_changed_records), and every contact that shows an identifier whose
-- clustered row was replaced (int_identity_scope_clusters), in the last build or now. A
-- contact's customer is the smallest label among its linkable identifiers, so no other
-- contact's customer can have changed.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
with

changed_records as (
    select * from {{ ref('int_identity_changed_records') }}
),

scope_clusters as not materialized (
    select * from {{ ref('int_identity_scope_clusters') }}
),

observations as (
    select * from {{ ref('int_identity_scope_observations') }}
),

{% if full %}

final as (
    select record_key as contact_id from changed_records where record_kind = 'contact'
)

{% else %}

last_observed as (
    select * from {{ built_relation('int_identifiers_observed') }}
),

final as (
    select record_key as contact_id from changed_records where record_kind = 'contact'
    union
    select record_key as contact_id
    from last_observed
    where record_kind = 'contact'
        and identifier_key in (select identifier_key from scope_clusters)
    union
    select record_key as contact_id
    from observations
    where record_kind = 'contact'
        and identifier_key in (select identifier_key from scope_clusters)
)

{% endif %}

select * from final

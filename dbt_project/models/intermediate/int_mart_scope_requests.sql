-- The requests whose fct_requests row the scoped build replaces (docs/dbt.md, "The scoped
-- identity chain", item 10): the requests of int_mart_scope_contacts in the last build (an id
-- that went away is deleted) and now. A request's row is computed from its contacts and the
-- survey answers on them, so no other request's row changed. On a full build, every request.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
with

scope_contacts as not materialized (
    select * from {{ ref('int_mart_scope_contacts') }}
),

contacts as (
    select * from {{ ref('int_contacts_stitched_to_requests') }}
),

{% if full %}

final as (
    select distinct request_id from contacts
)

{% else %}

final as (
    select last_request_id as request_id
    from scope_contacts
    where last_request_id is not null
    union
    select request_id
    from contacts
    where contact_id in (select contact_id from scope_contacts)
)

{% endif %}

select * from final

-- The contacts whose request the scoped rebuild names again (docs/dbt.md, "The scoped identity
-- chain", item 8): the contacts whose links were replaced (int_request_scope_contacts) and
-- every contact of a component one of them is in now. Whole components, so each request's
-- first contact is taken over all of it. A request of the last build that lost a link needs
-- nothing more: a link that went away has both ends in int_request_scope_contacts (its
-- customer's or its ref's contacts changed), so every part of a split request holds one of
-- them and is found by its current component. On a full build, every contact.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_request_links') }}
with

scope as not materialized (
    select * from {{ ref('int_request_scope_contacts') }}
),

components as not materialized (
    select * from {{ ref('int_request_components') }}
),

{% if full %}

final as (
    select contact_id from scope
)

{% else %}

links as not materialized (
    select * from {{ ref('int_request_links') }}
),

current_request_contacts as (
    select contact_node
    from components
    where request_node in (
        select request_node from components where contact_node in (select contact_node from scope)
    )
),

final as (
    select contact_id from scope
    -- every contact of a component is on a link, which holds its contact_id
    union
    select contact_a as contact_id
    from links
    where node_a in (select contact_node from current_request_contacts)
    union
    select contact_b as contact_id
    from links
    where node_b in (select contact_node from current_request_contacts)
)

{% endif %}

select * from final

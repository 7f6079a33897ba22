-- The contacts whose int_request_components row the scoped rebuild replaces (docs/dbt.md,
-- "The scoped identity chain", item 8): the nodes of int_request_scope_contacts, the other
-- ends of the links this build keeps or writes with an end among them, and every contact of
-- a component any of those was in at the last build. No link leaves this set: a link this
-- build wrote has an end in int_request_scope_contacts (int_request_links replaces exactly
-- those) and its other end is taken here, and a link it kept joins two contacts of one old
-- component. So the components of these contacts are found from the links that touch them
-- alone, and every other contact keeps its request_node and size.
-- int_request_scope_component_labels fails the build if a component it finds reaches
-- outside. On a full build (int_identity_build.is_full), empty: every link is read then.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_request_scope_contacts') }}
-- depends_on: {{ ref('int_request_links') }}
{% if full %}

select null::bigint as contact_node where false

{% else %}

with

scope as not materialized (
    select contact_node from {{ ref('int_request_scope_contacts') }}
),

links as not materialized (
    select * from {{ ref('int_request_links') }}
),

-- the other ends of the links with an end in scope: int_request_links rewrites those links,
-- and one can join a scope contact to a contact outside the scope. By the closure of
-- int_request_scope_contacts (whole customers and refs) such a link was there at the last
-- build too, so the old components below hold its end already; it is taken here anyway, so
-- that this model's argument does not rest on that closure (dropping it passes every test)
touched as (
    select contact_node from scope
    union
    select node_b from links where node_a in (select contact_node from scope)
    union
    select node_a from links where node_b in (select contact_node from scope)
),

final as (
    {{ with_old_components('touched', 'int_request_components', 'contact_node', 'request_node') }}
)

select * from final

{% endif %}

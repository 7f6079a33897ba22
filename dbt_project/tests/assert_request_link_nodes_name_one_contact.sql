-- Request links carry each contact's node id (macro node_id: 63 bits of the contact_id's
-- md5). Two contacts with one id would share a component, so a request: fails for any node
-- id that names two contacts (odds about 1.4 in a million at 5M contacts; docs/dbt.md).
--
-- Scoped like the unique tests of the chain (macro duckdb__get_where_subquery): only the
-- node ids at an end of a link this build wrote (int_request_links replaces the links with
-- an end in int_request_scope_contacts), every node on a full build or without the scope
-- tables. A contact's node id never changes, so two contacts that share one with no link
-- written now both had their links at the last build, which passed this test. The scope
-- tables are read as built (no ref: they are ancestors of int_request_links anyway, and a
-- ref would select this test with them).
{%- set build = built_relation('int_identity_build') %}
{%- set scope = built_relation('int_request_scope_contacts') %}
{#- full or scoped, read before the query (macro built_is_full) #}
{%- set scoped = build is not none and scope is not none and not built_is_full() %}
with

links as not materialized (
    select * from {{ ref('int_request_links') }}
),

written as not materialized (
    select node_a, node_b
    from links
    {%- if scoped %}
    where node_a in (select contact_node from {{ scope }})
        or node_b in (select contact_node from {{ scope }})
    {%- endif %}
),

written_nodes as not materialized (
    select node_a as contact_node from written
    union
    select node_b as contact_node from written
),

ends as (
    select node_a as contact_node, contact_a as contact_id, from links
    where node_a in (select contact_node from written_nodes)
    union
    select node_b as contact_node, contact_b as contact_id, from links
    where node_b in (select contact_node from written_nodes)
)

select
    contact_node,
    count(*) as contacts,
from ends
group by contact_node
having count(*) > 1

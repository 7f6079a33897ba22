-- One row per contact on a request link (int_request_components) with its unified request
-- (model spec section 4): request_id = md5 of the component's first contact_id, first in
-- (started_at, contact_id) order.
--
-- Narrow on purpose: int_contacts_stitched_to_requests joins this table to the wide contacts.
-- Done in one statement there, DuckDB built its hash table on the wide side and the model
-- took 60 s at 5M contacts; the two statements took 27 s (docs/dbt.md, "Stable numbering").
--
-- Incremental: a build replaces the contacts of int_request_scope_requests, whole requests.
-- On a full build, or when the table is created now, that is every contact and the filter is
-- left out: the inner join to int_contacts_identified keeps the same rows, and the two
-- semi-joins each held a hash table of every contact_id, which at 5M contacts did not fit a
-- 768MB cap (docs/dbt.md, "Memory").
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('contact_id', 'int_request_scope_requests') }}",
    )
}}
with

scope as not materialized (
    select * from {{ ref('int_request_scope_requests') }}
),

links as not materialized (
    select * from {{ ref('int_request_links') }}
),

-- node ids from the links, not recomputed: a contact on no link is in no component, even if
-- its id collided with a linked contact's (tests/assert_request_link_nodes_name_one_contact)
linked_contacts as (
    select contact_a as contact_id, node_a as contact_node,
    from links
    {% if not full %}where contact_a in (select contact_id from scope){% endif %}
    union
    select contact_b as contact_id, node_b as contact_node,
    from links
    {% if not full %}where contact_b in (select contact_id from scope){% endif %}
),

contacts as (
    select
        contacts.contact_id,
        contacts.started_at,
        linked_contacts.contact_node,
    from {{ ref('int_contacts_identified') }} as contacts
    inner join linked_contacts
        on contacts.contact_id = linked_contacts.contact_id
),

components as not materialized (
    select * from {{ ref('int_request_components') }}
),

final as (
    select
        contacts.contact_id,
        md5(
            first_value(contacts.contact_id) over (
                partition by components.request_node
                order by contacts.started_at, contacts.contact_id
            )
        ) as request_id,
    from contacts
    inner join components
        on contacts.contact_node = components.contact_node
)

select * from final

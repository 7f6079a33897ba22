-- One row per contact on a request link (int_request_components) with its unified request
-- (model spec section 4): request_id = md5 of the component's first contact_id, first in
-- (started_at, contact_id) order. contact_seq is that rank over all contacts, the same one
-- int_request_links numbers its nodes with; it maps the components back to contact ids.
--
-- Narrow on purpose: int_contacts_stitched_to_requests joins this table to the wide contacts.
-- Done in one statement there, DuckDB built its hash table on the wide side and the model
-- took 60 s at 5M contacts; the two statements took 27 s (docs/dbt.md, "Stable numbering").
with

contacts as (
    select * from {{ ref('int_contacts_identified') }}
),

components as (
    select * from {{ ref('int_request_components') }}
),

sequenced as (
    select
        contact_id,
        row_number() over (order by started_at, contact_id) as contact_seq,
    from contacts
),

linked as (
    select
        sequenced.contact_id,
        sequenced.contact_seq,
        components.request_seq,
    from components
    inner join sequenced
        on components.contact_seq = sequenced.contact_seq
),

final as (
    select
        linked.contact_id,
        md5(first_contacts.contact_id) as request_id,
    from linked
    -- a component's smallest contact_seq is on a link itself, so its first contact is here
    inner join linked as first_contacts
        on linked.request_seq = first_contacts.contact_seq
)

select * from final

-- One row per contact with its unified request (model spec section 4): the contact's
-- component of request links (int_request_links -> int_request_components), or the contact
-- alone when it has no link. request_id = md5 of the request's first contact_id, first in
-- (started_at, contact_id) order: contact_seq here is the same rank int_request_links uses.
with

contacts as (
    select * from {{ ref('int_contacts_identified') }}
),

components as (
    select * from {{ ref('int_request_components') }}
),

sequenced as (
    select
        *,
        row_number() over (order by started_at, contact_id) as contact_seq,
    from contacts
),

stitched as (
    select
        sequenced.*,
        coalesce(components.request_seq, sequenced.contact_seq) as request_seq,
    from sequenced
    left join components
        on sequenced.contact_seq = components.contact_seq
),

first_contacts as (
    select
        contact_seq,
        contact_id,
    from sequenced
),

final as (
    select
        stitched.* exclude (request_seq),
        md5(first_contacts.contact_id) as request_id,
    from stitched
    inner join first_contacts
        on stitched.request_seq = first_contacts.contact_seq
)

select * from final

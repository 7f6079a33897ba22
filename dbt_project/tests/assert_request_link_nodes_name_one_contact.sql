-- Request links carry each contact's node id (macro node_id: 63 bits of the contact_id's
-- md5). Two contacts with one id would share a component, so a request: fails for any node
-- id that names two contacts (odds about 1.4 in a million at 5M contacts; docs/dbt.md).
with

links as (
    select * from {{ ref('int_request_links') }}
),

ends as (
    select node_a as contact_node, contact_a as contact_id, from links
    union
    select node_b as contact_node, contact_b as contact_id, from links
)

select
    contact_node,
    count(*) as contacts,
from ends
group by contact_node
having count(*) > 1

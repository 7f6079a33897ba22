-- One row per contact: the harmonized contact plus the unified customer it belongs to.
-- A contact's customer is the component of its linkable identifiers (all of them sit in one
-- component, since they share the contact as an edge); a contact with no linkable identifier
-- (none at all, or only blocklisted / shared ones) is a customer of its own, labelled
-- `contact:<contact_id>`, so that every contact has a customer.
with

contacts as (
    select * from {{ ref('int_contacts_unioned') }}
),

observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

clustered as (
    select * from {{ ref('int_identifiers_clustered') }}
),

contact_labels as (
    select
        observed.record_key as contact_id,
        min(clustered.customer_label) as customer_label,
    from observed
    inner join clustered
        on observed.identifier_key = clustered.identifier_key
    where observed.record_kind = 'contact' and clustered.is_linkable
    group by observed.record_key
),

identified as (
    select
        contacts.*,
        md5(coalesce(contact_labels.customer_label, 'contact:' || contacts.contact_id)) as customer_id,
    from contacts
    left join contact_labels
        on contacts.contact_id = contact_labels.contact_id
)

select * from identified

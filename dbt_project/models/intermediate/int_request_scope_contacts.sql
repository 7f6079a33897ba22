-- The contacts whose request links the scoped rebuild replaces (docs/dbt.md, "The scoped
-- identity chain", item 8): the contacts of int_identity_scope_contacts (changed, gone, or
-- with a customer that may have changed), every contact of a customer one of them has or had
-- (rule 2 links consecutive contacts of one customer and topic), and every contact quoting a
-- request_ref one of them quotes or quoted (rule 1). Every link that can change has an end
-- here: a rule-2 link belongs to a customer whose contacts changed, a rule-1 star to a ref
-- whose contacts changed. On a full build (int_identity_build.is_full), every contact.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
with

contacts as not materialized (
    select * from {{ ref('int_contacts_identified') }}
),

identity_scope as not materialized (
    select * from {{ ref('int_identity_scope_contacts') }}
),

{% if full %}

final as (
    select contact_id from contacts
)

{% else %}

last_contacts as (
    select * from {{ built_relation('int_contacts_stitched_to_requests') }}
),

scope_then_and_now as (
    select customer_id, request_ref
    from last_contacts
    where contact_id in (select contact_id from identity_scope)
    union all
    select customer_id, request_ref
    from contacts
    where contact_id in (select contact_id from identity_scope)
),

final as (
    select contact_id from identity_scope
    union
    select contact_id
    from contacts
    where customer_id in (select customer_id from scope_then_and_now)
        or request_ref in (
            select request_ref from scope_then_and_now where request_ref is not null
        )
)

{% endif %}

select
    contact_id,
    {{ node_id('contact_id') }} as contact_node,
from final

-- One row per contact with its unified request (model spec section 4): the request of its
-- component of request links (int_request_links -> int_request_components ->
-- int_request_contacts), or, for a contact on no link, a request of its own named
-- md5(contact_id).
--
-- Incremental: a build replaces the contacts of int_request_scope_requests, which holds every
-- contact whose row (int_identity_scope_contacts) or request can have changed: every
-- contact on a full build, when the filter is left out (macro writes_every_row).
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_request_scope_requests') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('contact_id', 'int_request_scope_requests') }}",
    )
}}
with

contacts as (
    select *
    from {{ ref('int_contacts_identified') }}
    {% if not full -%}
    where contact_id in (select contact_id from {{ ref('int_request_scope_requests') }})
    {%- endif %}
),

request_contacts as (
    select * from {{ ref('int_request_contacts') }}
),

final as (
    select
        contacts.*,
        coalesce(request_contacts.request_id, md5(contacts.contact_id)) as request_id,
    from contacts
    left join request_contacts
        on contacts.contact_id = request_contacts.contact_id
)

select * from final

-- Every contact on a request link (its stable node id), labelled with the smallest node id of
-- its component and with the component's size (model spec section 4). The components are
-- found by the Python model int_request_scope_component_labels (scipy over the links as
-- integer arrays). Contacts without a link are not here; int_contacts_stitched_to_requests
-- makes each of them a request of its own.
--
-- Incremental: a build replaces the contacts of int_request_scope_components, whole
-- components then and now, with the labels found for them; every other contact's component
-- is unchanged.
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('contact_node', 'int_request_scope_components') }}",
    )
}}
with

labels as (
    select * from {{ ref('int_request_scope_component_labels') }}
),

final as (
    select
        contact_node::bigint as contact_node,
        request_node::bigint as request_node,
        request_contacts::bigint as request_contacts,
    from labels
)

select * from final

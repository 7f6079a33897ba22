-- One row per contact: the harmonized contact plus the unified customer it belongs to.
-- A contact's customer is the component of its linkable identifiers (all of them sit in one
-- component, since they share the contact as an edge); a contact with no linkable identifier
-- (none at all, or only blocklisted / shared ones) is a customer of its own, labelled
-- `contact:<contact_id>`, so that every contact has a customer.
--
-- Incremental: a build replaces the contacts of int_identity_scope_contacts. Their
-- identifiers come from int_identity_scope_observations when the contact is there (as it is
-- now), else from int_identifiers_observed (the contact did not change since that build).
-- On a full build, or when the table is created now, the scope is every contact and its
-- filters are left out (as in int_request_contacts): each built a hash table of every
-- contact_id for nothing.
{% set full = writes_every_row() %}
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('contact_id', 'int_identity_scope_contacts') }}",
    )
}}
with

scope as not materialized (
    select * from {{ ref('int_identity_scope_contacts') }}
),

contacts as (
    select *
    from {{ ref('int_contacts_unioned') }}
    {% if not full %}where contact_id in (select contact_id from scope){% endif %}
),

scope_observations as (
    select record_key, identifier_key,
    from {{ ref('int_identity_scope_observations') }}
    where record_kind = 'contact'
        {% if not full %}and record_key in (select contact_id from scope){% endif %}
),

{% if not full %}

last_observed as (
    select * from {{ built_relation('int_identifiers_observed') }}
),

observations as (
    select * from scope_observations
    union all
    select record_key, identifier_key,
    from last_observed
    where record_kind = 'contact'
        and record_key in (select contact_id from scope)
        and record_key not in (select record_key from scope_observations)
),

{% else %}

observations as (
    select * from scope_observations
),

{% endif %}

clustered as (
    select * from {{ ref('int_identifiers_clustered') }}
),

contact_labels as (
    select
        observations.record_key as contact_id,
        min(clustered.customer_label) as customer_label,
    from observations
    inner join clustered
        on observations.identifier_key = clustered.identifier_key
    where clustered.is_linkable
    group by observations.record_key
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

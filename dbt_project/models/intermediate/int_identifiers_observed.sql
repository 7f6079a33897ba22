-- One row per (source record, identifier) pair: the nodes of the identity graph as each
-- record shows them, already normalized in staging, with the record's validated_at. Contacts
-- and CRM rows are both records; two identifiers on one record are an edge (see
-- int_identifier_edges).
--
-- Incremental, and the last model of the identity and request chains (depends_on below): a
-- build replaces the rows of the changed records (int_identity_changed_records). Written
-- last, it stays as the last complete build left it when a build fails half way, and the next
-- build's scope is taken against it again (docs/dbt.md, "The scoped identity chain"). Its
-- post_hook marks the build completed in int_identity_build, in the same transaction; a build
-- after one that stopped before that is full.
-- depends_on: {{ ref('int_contacts_stitched_to_requests') }}
-- depends_on: {{ ref('fct_journey_steps') }}
-- depends_on: {{ ref('dim_customers') }}
-- depends_on: {{ ref('int_identity_build') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_identity_scope('record_key', 'int_identity_changed_records') }}",
        post_hook="update {{ ref('int_identity_build') }} set completed = true",
    )
}}
with

changed_records as (
    select * from {{ ref('int_identity_changed_records') }}
),

observations as (
    select * from {{ ref('int_identity_scope_observations') }}
),

final as (
    select
        record_key,
        record_kind,
        identifier_type,
        identifier_value,
        identifier_key,
        observed_at,
        validated_at,
    from observations
    where record_key in (select record_key from changed_records)
)

select * from final

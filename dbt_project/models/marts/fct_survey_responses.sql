-- One row per survey answer (NPS 0-10 or CSAT 1-5), attached to the contact it surveys
-- (Delighted person_properties contact_ref) and through it to a customer and a request.
--
-- Incremental: a build replaces the answers validated since the last build and the answers
-- on the contacts of int_mart_scope_contacts (macro changed_responses; docs/dbt.md, "The
-- scoped identity chain", item 10).
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_mart_scope_contacts') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        on_schema_change='fail',
        pre_hook="{{ delete_changed('response_id', changed_responses()) }}",
    )
}}
with

responses as (
    select *
    from {{ ref('stg_surveys__responses') }}
    where response_id in ({{ changed_responses() }})
),

contacts as (
    select *
    from {{ ref('fct_contacts') }}
    where contact_id in (select contact_id from responses)
),

final as (
    select
        responses.response_id,
        responses.contact_id,
        contacts.customer_id,
        contacts.request_id,
        contacts.channel,
        responses.survey_type,
        responses.score,
        responses.answered_at,
    from responses
    left join contacts
        on responses.contact_id = contacts.contact_id
)

select * from final

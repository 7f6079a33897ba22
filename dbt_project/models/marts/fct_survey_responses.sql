-- One row per survey answer (NPS 0-10 or CSAT 1-5), attached to the contact it surveys
-- (Delighted person_properties contact_ref) and through it to a customer and a request.
with

responses as (
    select * from {{ ref('stg_surveys__responses') }}
),

contacts as (
    select * from {{ ref('fct_contacts') }}
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

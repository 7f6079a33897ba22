-- The contacts whose facts the scoped build recomputes (docs/dbt.md, "The scoped identity
-- chain", item 10), with their request and customer in the last build's fct_contacts: the
-- contacts int_contacts_stitched_to_requests replaced (int_request_scope_requests), and the
-- contacts a survey answer validated since the last build names now or named then (a new
-- answer moves its request's followed_up_at and its customer's last NPS). Read before
-- fct_contacts and fct_survey_responses are replaced (they depend on this model). On a full
-- build, every contact.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('stg_surveys__responses') }}
with

request_scope as (
    select * from {{ ref('int_request_scope_requests') }}
),

{% if full %}

final as (
    select
        contact_id,
        null::varchar as last_request_id,
        null::varchar as last_customer_id,
    from request_scope
)

{% else %}

changed_responses as (
    select response_id, contact_id
    from {{ ref('stg_surveys__responses') }}
    where {{ validated_since('responses_since') }}
),

last_responses as (
    select * from {{ built_relation('fct_survey_responses') }}
),

last_contacts as (
    select * from {{ built_relation('fct_contacts') }}
),

scope as (
    select contact_id from request_scope
    union
    select contact_id from changed_responses where contact_id is not null
    union
    select contact_id
    from last_responses
    where response_id in (select response_id from changed_responses)
        and contact_id is not null
),

final as (
    select
        scope.contact_id,
        last_contacts.request_id as last_request_id,
        last_contacts.customer_id as last_customer_id,
    from scope
    left join last_contacts
        on scope.contact_id = last_contacts.contact_id
)

{% endif %}

select * from final

-- The contacts whose facts the scoped build recomputes (docs/dbt.md, "The scoped identity
-- chain", item 10), with their request and customer in the last build's fct_contacts: the
-- contacts int_contacts_stitched_to_requests replaced (int_request_scope_requests) whose row
-- there differs from their last fct_contacts row (a new contact, a gone one, or a changed
-- column: item 12), and the contacts a survey answer validated since the last build names
-- now or named then (a new answer moves its request's followed_up_at and its customer's last
-- NPS). A scope contact written again as it was leaves every fact as it was: fct_contacts is
-- its row (plus the cost of its channel and handle time), and a request or customer changes
-- only through a contact, an answer or (int_mart_scope_customers) an identifier. Read before
-- fct_contacts and fct_survey_responses are replaced (they depend on this model). On a full
-- build, every contact.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('stg_surveys__responses') }}
-- depends_on: {{ ref('int_contacts_stitched_to_requests') }}
{#- the columns compared: every column of fct_contacts as built but contact_id and cost (which
    follows from channel, handle_seconds and the channel_costs seed, in the fingerprint), read
    from the table, so a column fct_contacts gains is compared too (or, if stitching lacks
    it, fails the build) -#}
{%- set fact_columns = [] -%}
{%- if execute and not full -%}
    {%- for column in adapter.get_columns_in_relation(built_relation('fct_contacts')) -%}
        {%- if column.name not in ('contact_id', 'cost') -%}
            {%- do fact_columns.append(column.name) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}
with

request_scope as not materialized (
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

-- read twice: not materialized, or DuckDB copies all of fct_contacts (1.7 s at 5M)
last_contacts as not materialized (
    select * from {{ built_relation('fct_contacts') }}
),

stitched_now as (
    select contact_id, {{ fact_columns | join(', ') }}
    from {{ ref('int_contacts_stitched_to_requests') }}
    where contact_id in (select contact_id from request_scope)
),

contacts_then as (
    select contact_id, {{ fact_columns | join(', ') }}
    from last_contacts
    where contact_id in (select contact_id from request_scope)
),

changed_contacts as (
    select coalesce(stitched_now.contact_id, contacts_then.contact_id) as contact_id
    from stitched_now
    full join contacts_then
        on stitched_now.contact_id = contacts_then.contact_id
    where stitched_now.contact_id is null
        or contacts_then.contact_id is null
        {%- for column in fact_columns %}
        or stitched_now.{{ column }} is distinct from contacts_then.{{ column }}
        {%- endfor %}
),

scope as (
    select contact_id from changed_contacts
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

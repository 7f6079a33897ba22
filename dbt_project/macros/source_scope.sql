{#-
    The scoped rebuild of the models between staging and the identity chain
    (int_sms_contacts_sessionized, int_messenger_contacts_aggregated, int_contacts_unioned;
    docs/dbt.md, "The scoped identity chain", item 0). Each replaces the rows built from source
    records validated after int_identity_build.contacts_since (the newest contact the last
    complete build observed): the same records int_identity_changed_records takes as changed,
    read from staging. Each query below names the keys a model deletes and selects again, so
    its pre_hook (delete_changed, macros/identity_scope.sql) and its select cannot disagree.
-#}

{% macro build_watermark(column) -%}
    {#- A watermark of int_identity_build (contacts_since, responses_since) as a SQL
        expression: -infinity (every row) when the build is full, under --full-refresh, or
        when the model's table is created now (a first build; a scoped select would leave
        the table with the scope's rows alone). An expression, not a value fetched while
        compiling, so the dbt unit tests of these models run it against their fixtures. -#}
    {%- if takes_every_row() -%}
        '-infinity'::timestamptz
    {%- else -%}
        (
            select case when is_full then '-infinity'::timestamptz else {{ column }} end
            from {{ ref('int_identity_build') }}
        )
    {%- endif -%}
{%- endmacro %}

{% macro contacts_since() -%}
    {#- The watermark of the scoped models' source rows: the newest contact the last complete
        build observed. -#}
    {{ build_watermark('contacts_since') }}
{%- endmacro %}

{% macro validated_since(watermark='contacts_since', column='validated_at') -%}
    {#- True for a row validated after the watermark (int_identity_build: contacts_since,
        crm_since, responses_since), and for one without validated_at, which validation
        never writes: better taken again than lost. -#}
    coalesce({{ column }} > {{ build_watermark(watermark) }}, true)
{%- endmacro %}

{% macro changed_email_tickets() -%}
    {#- E-mail tickets whose contact changed: the ticket's row or its metrics validated since
        the last build. -#}
    select *
    from {{ ref('stg_email__tickets') }}
    where {{ validated_since() }}
        or ticket_id in (
            select ticket_id from {{ ref('stg_email__ticket_metrics') }}
            where {{ validated_since() }}
        )
{%- endmacro %}

{% macro sms_pair_key(customer_phone, customer_phone_raw, company_phone) -%}
    coalesce({{ customer_phone }}, {{ customer_phone_raw }}, '') || chr(31) || coalesce({{ company_phone }}, '')
{%- endmacro %}

{% macro sms_changed_pairs() -%}
    {#- The (customer number, company number) pairs with a message validated since the last
        build: a new or changed message can move every cut of its pair, so whole pairs are
        sessionized again. -#}
    select distinct {{ sms_pair_key('customer_phone', 'customer_phone_raw', 'company_phone') }}
    from {{ ref('stg_sms__messages') }}
    where {{ validated_since() }}
{%- endmacro %}

{% macro messenger_changed_conversations() -%}
    {#- Conversations whose own row or any message was validated since the last build. -#}
    select conversation_id
    from {{ ref('stg_messenger__conversations') }}
    where {{ validated_since() }}
    union
    select conversation_id
    from {{ ref('stg_messenger__messages') }}
    where {{ validated_since() }}
{%- endmacro %}

{% macro unioned_changed_contacts() -%}
    {#- Contacts with a source row validated since the last build. An SMS thread carries the
        newest validated_at of its pair, a Messenger contact the newest of its conversation and
        messages, so the two models above hand over exactly what they replaced. An e-mail
        contact changes with its ticket or its metrics. -#}
    select contact_id from {{ ref('stg_voice__contacts') }}
    where {{ validated_since() }}
    union
    select contact_id from {{ ref('int_sms_contacts_sessionized') }}
    where {{ validated_since() }}
    union
    select contact_id from ({{ changed_email_tickets() }})
    union
    select contact_id from {{ ref('stg_chat__conversations') }}
    where {{ validated_since() }}
    union
    select contact_id from {{ ref('int_messenger_contacts_aggregated') }}
    where {{ validated_since() }}
{%- endmacro %}

{% macro changed_responses() -%}
    {#- The survey answers fct_survey_responses replaces: those validated since the last build
        (int_identity_build.responses_since) and those on a contact whose customer, request or
        channel the build may have changed (int_mart_scope_contacts). The contacts of the
        first are in int_mart_scope_contacts too, so the first branch adds only answers that
        name no contact (dropping it passes tests/test_dbt_incremental.py, whose answers all
        name one). -#}
    select response_id
    from {{ ref('stg_surveys__responses') }}
    where {{ validated_since('responses_since') }}
        or contact_id in (select contact_id from {{ ref('int_mart_scope_contacts') }})
{%- endmacro %}

-- One row per (source record, identifier) pair: the nodes of the identity graph as each
-- record shows them, already normalized in staging. Contacts and CRM rows are both records;
-- two identifiers on one record are an edge (see int_identifiers_clustered).
with

contacts as (
    select * from {{ ref('int_contacts_unioned') }}
),

crm_contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

contact_identifiers as (
    unpivot (
        select
            contact_id as record_key,
            'contact' as record_kind,
            started_at as observed_at,
            email,
            phone,
            messenger_psid,
            chat_contact_id,
            crm_id,
        from contacts
    )
    on email, phone, messenger_psid, chat_contact_id, crm_id
    into name identifier_type value identifier_value
),

crm_identifiers as (
    unpivot (
        select
            'crm:' || crm_contact_id as record_key,
            'crm' as record_kind,
            updated_at as observed_at,
            email,
            phone,
            crm_contact_id as crm_id,
        from crm_contacts
    )
    on email, phone, crm_id
    into name identifier_type value identifier_value
),

unioned as (
    select * from contact_identifiers
    union all by name
    select * from crm_identifiers
),

observed as (
    select
        record_key,
        record_kind,
        identifier_type,
        identifier_value,
        identifier_type || ':' || identifier_value as identifier_key,
        min(observed_at) as observed_at,
    from unioned
    where identifier_value is not null and identifier_value <> ''
    group by all
)

select * from observed

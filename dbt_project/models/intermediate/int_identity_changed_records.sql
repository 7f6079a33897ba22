-- The records (contacts and CRM rows) whose identity inputs may have changed since the last
-- complete build of the identity chain: the first step of its scoped rebuild (docs/dbt.md,
-- "The scoped identity chain"). A record changed when its validated_at is after the newest
-- one of its kind int_identifiers_observed holds (int_identity_build.contacts_since and
-- crm_since; that table is written last in the chain, so it marks the last complete build),
-- or when it is gone: a contact the last build had that
-- int_contacts_unioned no longer has (an SMS thread merged into another, a contact that lost
-- its start). After, not at: a validation run writes a source's rows under one validated_at
-- in one transaction, and the pipeline's lock keeps validation and dbt apart, so the rows at
-- the watermark are all in that build (staging re-reads them, and keeps what it has). On a
-- full build (int_identity_build.is_full), every record is changed.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
with

contacts as not materialized (
    select * from {{ ref('int_contacts_unioned') }}
),

crm_contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

{% if full %}

final as (
    select contact_id as record_key, 'contact' as record_kind, from contacts
    union all
    select 'crm:' || crm_contact_id as record_key, 'crm' as record_kind, from crm_contacts
)

{% else %}

last_contacts as (
    select * from {{ built_relation('int_contacts_identified') }}
),

changed_contacts as (
    select contact_id as record_key,
    from contacts
    where {{ validated_since('contacts_since') }}
),

-- int_contacts_identified holds every contact of the last build, those without any
-- identifier too. The contacts of int_identifiers_observed are among them: both tables were
-- written by that build, which completed (a build after an unfinished one is full), so
-- reading observed as well (10M contact rows at 5M) found nothing more, for 1.2 s.
gone_contacts as (
    select last_contacts.contact_id as record_key
    from last_contacts
    anti join contacts
        on last_contacts.contact_id = contacts.contact_id
),

changed_crm as (
    select 'crm:' || crm_contact_id as record_key,
    from crm_contacts
    where {{ validated_since('crm_since') }}
),

final as (
    select record_key, 'contact' as record_kind, from changed_contacts
    union
    select record_key, 'contact' as record_kind, from gone_contacts
    union all
    select record_key, 'crm' as record_kind, from changed_crm
)

{% endif %}

select * from final

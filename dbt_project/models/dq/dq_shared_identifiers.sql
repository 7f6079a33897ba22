-- One row per shared identifier: a (non-blocklisted) identifier with more than
-- var('max_identifier_degree') distinct neighbours, such as a company switchboard or a family
-- phone. Its edges were dropped from the identity graph; this is the auditors' list of them.
with

clustered as (
    select * from {{ ref('int_identifiers_clustered') }}
),

final as (
    select
        identifier_type,
        identifier_value,
        neighbours,
        records,
        {{ var('max_identifier_degree') }} as max_identifier_degree,
        first_observed_at,
        last_observed_at,
    from clustered
    where is_shared
)

select * from final

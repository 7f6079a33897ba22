-- The identity graph's edges: two linkable identifiers (neither blocklisted nor shared, see
-- int_identifiers_screened) on one record, as a pair of node_seq with node_a < node_b. A table
-- of its own so that the label propagation in int_identifier_components runs as a statement of
-- its own: inside one statement with the joins around it, DuckDB could not spill and failed a
-- 5M-contact build at a 2GB memory_limit (docs/dbt.md "Memory").
with

observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

screened as (
    select * from {{ ref('int_identifiers_screened') }}
),

linkable_observations as (
    select
        observed.record_key,
        screened.node_seq,
    from observed
    inner join screened
        on observed.identifier_key = screened.identifier_key
    where screened.is_linkable
),

final as (
    {{ co_occurring_pairs('linkable_observations') }}
)

select * from final

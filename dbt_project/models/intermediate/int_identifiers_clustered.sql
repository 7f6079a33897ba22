-- One row per identifier node of the identity graph (model spec section 3), with its guards
-- (int_identifiers_screened) and its component (int_identifier_components): customer_label is
-- the smallest `type:value` in the component, customer_id its md5. Blocklisted and shared
-- nodes get no label.
with

screened as (
    select * from {{ ref('int_identifiers_screened') }}
),

components as (
    select * from {{ ref('int_identifier_components') }}
),

clustered as (
    select
        screened.identifier_key,
        screened.identifier_type,
        screened.identifier_value,
        screened.records,
        screened.neighbours,
        screened.is_blocklisted,
        screened.blocklist_reason,
        screened.is_shared,
        screened.is_linkable,
        case
            when screened.is_linkable
                then coalesce(label_nodes.identifier_key, screened.identifier_key)
        end as customer_label,
        screened.first_observed_at,
        screened.last_observed_at,
    from screened
    left join components
        on screened.node_seq = components.node_seq
    left join screened as label_nodes
        on components.label_seq = label_nodes.node_seq
),

final as (
    select
        *,
        md5(customer_label) as customer_id,
    from clustered
)

select * from final

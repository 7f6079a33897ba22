-- Channel switches inside requests (model spec section 6): every pair of consecutive contacts
-- of one request, in (started_at, contact_id) order, counted in the month of the later contact.
-- Same-channel pairs are kept, so the matrix diagonal shows repeat contacts on one channel.
-- The pairs are int_request_transitions (incremental by request); this aggregates them.
with

transitions as (
    select * from {{ ref('int_request_transitions') }}
),

aggregated as (
    select
        {{ reporting_month('started_at') }} as month,
        from_channel,
        to_channel,
        count(*) as transitions,
        quantile_cont(gap_seconds, 0.5) as median_gap_seconds,
    from transitions
    group by all
),

final as (
    select
        month::date as month,
        from_channel::varchar as from_channel,
        to_channel::varchar as to_channel,
        transitions::bigint as transitions,
        median_gap_seconds::double as median_gap_seconds,
    from aggregated
)

select * from final

-- Channel switches inside requests (model spec section 6): every pair of consecutive contacts
-- of one request, in (started_at, contact_id) order, counted in the month of the later contact.
-- Same-channel pairs are kept, so the matrix diagonal shows repeat contacts on one channel.
with

contacts as (
    select * from {{ ref('fct_contacts') }}
),

pairs as (
    select
        request_id,
        {{ reporting_month('started_at') }} as month,
        lag(channel) over request_order as from_channel,
        channel as to_channel,
        {{ seconds_between('lag(started_at) over request_order', 'started_at') }}
            as gap_seconds,
        row_number() over request_order as position,
    from contacts
    window request_order as (partition by request_id order by started_at, contact_id)
),

aggregated as (
    select
        month,
        from_channel,
        to_channel,
        count(*) as transitions,
        quantile_cont(gap_seconds, 0.5) as median_gap_seconds,
    from pairs
    where position > 1
    group by month, from_channel, to_channel
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

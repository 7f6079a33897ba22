-- Service levels per reporting day and channel (model spec section 6): volume, response
-- times, abandonment, handle time and cost of the contacts started that day.
with

contacts as (
    select * from {{ ref('fct_contacts') }}
),

dated as (
    select
        {{ reporting_date('started_at') }} as date,
        channel,
        customer_id,
        direction = 'inbound' as is_inbound,
        abandoned,
        queue_seconds,
        handle_seconds,
        cost,
        {{ seconds_between('started_at', 'first_response_at') }} as first_response_seconds,
        {{ seconds_between('started_at', 'first_agent_response_at') }}
            as first_agent_response_seconds,
    from contacts
),

aggregated as (
    select
        date,
        channel,
        count(*) as contacts,
        count(*) filter (where is_inbound) as inbound_contacts,
        count(distinct customer_id) as customers,
        count(*) filter (where is_inbound and first_response_seconds is not null) as answered,
        count(*) filter (where is_inbound and abandoned) as abandoned_contacts,
        quantile_cont(first_response_seconds, 0.5) filter (where is_inbound) as frt_p50_seconds,
        quantile_cont(first_response_seconds, 0.9) filter (where is_inbound) as frt_p90_seconds,
        avg(first_response_seconds) filter (where is_inbound) as frt_avg_seconds,
        quantile_cont(first_agent_response_seconds, 0.5) filter (where is_inbound)
            as agent_frt_p50_seconds,
        avg(queue_seconds) as asa_seconds,
        avg(handle_seconds) as aht_seconds,
        sum(cost) as cost,
    from dated
    group by date, channel
),

final as (
    select
        date::date as date,
        channel::varchar as channel,
        contacts::bigint as contacts,
        inbound_contacts::bigint as inbound_contacts,
        customers::bigint as customers,
        answered::bigint as answered,
        (1 - answered / nullif(inbound_contacts, 0))::double as unanswered_rate,
        frt_p50_seconds::double as frt_p50_seconds,
        frt_p90_seconds::double as frt_p90_seconds,
        frt_avg_seconds::double as frt_avg_seconds,
        agent_frt_p50_seconds::double as agent_frt_p50_seconds,
        asa_seconds::double as asa_seconds,
        abandoned_contacts::bigint as abandoned_contacts,
        (abandoned_contacts / nullif(inbound_contacts, 0))::double as abandoned_rate,
        aht_seconds::double as aht_seconds,
        cost::decimal(18, 4) as cost,
        (cost / nullif(contacts, 0))::double as cost_per_contact,
    from aggregated
)

select * from final

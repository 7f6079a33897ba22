-- Requests per reporting day opened and first channel (model spec section 6): first-contact
-- resolution, effort (contacts per request, cross-channel share), resolution time and cost.
with

requests as (
    select * from {{ ref('fct_requests') }}
),

dated as (
    select
        {{ reporting_date('opened_at') }} as date,
        first_channel,
        contacts,
        cross_channel,
        resolved,
        resolution_seconds,
        fcr,
        cost,
        avoidable_cost,
    from requests
),

aggregated as (
    select
        date,
        first_channel,
        count(*) as requests,
        count(*) filter (where fcr) as fcr_requests,
        avg(contacts) as contacts_per_request,
        count(*) filter (where cross_channel) as cross_channel_requests,
        count(*) filter (where resolved) as resolved_requests,
        quantile_cont(resolution_seconds, 0.5) filter (where resolved)
            as resolution_p50_seconds,
        sum(cost) as cost,
        sum(avoidable_cost) as avoidable_cost,
    from dated
    group by date, first_channel
),

final as (
    select
        date::date as date,
        first_channel::varchar as first_channel,
        requests::bigint as requests,
        fcr_requests::bigint as fcr_requests,
        (fcr_requests / nullif(requests, 0))::double as fcr_rate,
        contacts_per_request::double as contacts_per_request,
        cross_channel_requests::bigint as cross_channel_requests,
        (cross_channel_requests / nullif(requests, 0))::double as cross_channel_rate,
        resolved_requests::bigint as resolved_requests,
        (resolved_requests / nullif(requests, 0))::double as resolved_rate,
        resolution_p50_seconds::double as resolution_p50_seconds,
        cost::decimal(18, 4) as cost,
        (cost / nullif(requests, 0))::double as cost_per_request,
        avoidable_cost::decimal(18, 4) as avoidable_cost,
    from aggregated
)

select * from final

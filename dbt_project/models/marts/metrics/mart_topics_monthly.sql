-- Requests per month and topic (model spec section 6): what customers come to us for, how
-- often it is solved at first contact and what it costs. A request counts in the month it was
-- opened, under its request topic, with all its contacts and all its cost.
with

requests as (
    select * from {{ ref('fct_requests') }}
),

dated as (
    select
        {{ reporting_month('opened_at') }} as month,
        topic,
        contacts,
        fcr,
        cost,
    from requests
),

aggregated as (
    select
        month,
        topic,
        count(*) as requests,
        sum(contacts) as contacts,
        count(*) filter (where fcr) as fcr_requests,
        sum(cost) as cost,
    from dated
    group by month, topic
),

shared as (
    select
        *,
        requests / nullif(sum(requests) over (partition by month), 0) as share_of_requests,
    from aggregated
),

final as (
    select
        month::date as month,
        topic::varchar as topic,
        requests::bigint as requests,
        contacts::bigint as contacts,
        share_of_requests::double as share_of_requests,
        fcr_requests::bigint as fcr_requests,
        (fcr_requests / nullif(requests, 0))::double as fcr_rate,
        cost::decimal(18, 4) as cost,
    from shared
)

select * from final

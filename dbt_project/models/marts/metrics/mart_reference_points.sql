-- Attainment of the service-level targets of seed reference_points (model spec section 6), per
-- reporting day and channel. A row exists for every day a channel had any contact and every
-- reference point of that channel (a request opens with its first contact, so every eligible
-- item falls on such a day); a day with nothing eligible has attainment null.
--   first_response: eligible = inbound contacts started that day; met = first response at most
--                   target_seconds after the start (never answered = not met).
--   resolution:     eligible = requests opened that day with that first_channel; met = resolved
--                   at most target_seconds after opening.
with

contacts as not materialized (
    select * from {{ ref('fct_contacts') }}
),

requests as not materialized (
    select * from {{ ref('fct_requests') }}
),

reference_points as not materialized (
    select * from {{ ref('reference_points') }}
),

channel_days as (
    select distinct
        {{ reporting_date('started_at') }} as date,
        channel,
    from contacts
),

first_response_items as (
    select
        {{ reporting_date('contacts.started_at') }} as date,
        contacts.channel,
        'first_response' as reference_point,
        coalesce(
            {{ seconds_between('contacts.started_at', 'contacts.first_response_at') }}
                <= reference_points.target_seconds,
            false
        ) as is_met,
    from contacts
    inner join reference_points
        on contacts.channel = reference_points.channel
        and reference_points.metric = 'first_response'
    where contacts.direction = 'inbound'
),

resolution_items as (
    select
        {{ reporting_date('requests.opened_at') }} as date,
        requests.first_channel as channel,
        'resolution' as reference_point,
        coalesce(
            requests.resolved
                and requests.resolution_seconds <= reference_points.target_seconds,
            false
        ) as is_met,
    from requests
    inner join reference_points
        on requests.first_channel = reference_points.channel
        and reference_points.metric = 'resolution'
),

items as (
    select * from first_response_items
    union all
    select * from resolution_items
),

counted as (
    select
        date,
        channel,
        reference_point,
        count(*) as eligible,
        count(*) filter (where is_met) as met,
    from items
    group by date, channel, reference_point
),

grid as (
    select
        channel_days.date,
        channel_days.channel,
        reference_points.metric as reference_point,
        reference_points.target_seconds,
    from channel_days
    inner join reference_points
        on channel_days.channel = reference_points.channel
),

final as (
    select
        grid.date::date as date,
        grid.channel::varchar as channel,
        grid.reference_point::varchar as reference_point,
        grid.target_seconds::bigint as target_seconds,
        coalesce(counted.eligible, 0)::bigint as eligible,
        coalesce(counted.met, 0)::bigint as met,
        (counted.met / nullif(counted.eligible, 0))::double as attainment,
    from grid
    left join counted
        on grid.date = counted.date
        and grid.channel = counted.channel
        and grid.reference_point = counted.reference_point
)

select * from final

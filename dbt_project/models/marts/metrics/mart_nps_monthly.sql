-- NPS and CSAT per month of the answer and channel of the surveyed contact (model spec section
-- 6), plus an `all` row per month over every answer. Answers whose surveyed contact is not in
-- fct_contacts are counted under channel `unknown`, so each month's `all` row is the sum of
-- its channel rows.
with

surveys as (
    select * from {{ ref('fct_survey_responses') }}
),

answers as (
    select
        {{ reporting_month('answered_at') }} as month,
        coalesce(channel, 'unknown') as channel,
        survey_type = 'nps' and score between 0 and 10 as is_nps,
        survey_type = 'csat' and score between 1 and 5 as is_csat,
        score,
    from surveys
),

per_channel as (
    select * from answers
    union all
    select
        month,
        'all' as channel,
        is_nps,
        is_csat,
        score,
    from answers
),

aggregated as (
    select
        month,
        channel,
        count(*) filter (where is_nps) as responses,
        count(*) filter (where is_nps and score >= 9) as promoters,
        count(*) filter (where is_nps and score between 7 and 8) as passives,
        count(*) filter (where is_nps and score <= 6) as detractors,
        count(*) filter (where is_csat) as csat_responses,
        count(*) filter (where is_csat and score >= 4) as csat_satisfied,
    from per_channel
    where is_nps or is_csat
    group by month, channel
),

final as (
    select
        month::date as month,
        channel::varchar as channel,
        responses::bigint as responses,
        promoters::bigint as promoters,
        passives::bigint as passives,
        detractors::bigint as detractors,
        (100 * (promoters - detractors) / nullif(responses, 0))::double as nps,
        csat_responses::bigint as csat_responses,
        csat_satisfied::bigint as csat_satisfied,
        (csat_satisfied / nullif(csat_responses, 0))::double as csat,
    from aggregated
)

select * from final

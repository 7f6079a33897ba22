-- Customer retention by cohort (model spec section 6): customers grouped by the month of their
-- first contact, and the share of each cohort with any contact 0, 1, 2, ... months later, up
-- to the last month with contacts (months with no active customer are rows with 0). The
-- months come from int_customer_activity_months, kept per customer by the scoped build.
with

active_months as not materialized (
    select customer_id, activity_month, from {{ ref('int_customer_activity_months') }}
),

cohorts as (
    select
        customer_id,
        min(activity_month) as cohort_month,
    from active_months
    group by customer_id
),

cohort_sizes as (
    select
        cohort_month,
        count(*) as cohort_customers,
    from cohorts
    group by cohort_month
),

last_month as (
    select max(activity_month) as last_activity_month from active_months
),

grid as (
    select
        cohort_sizes.cohort_month,
        unnest(generate_series(
            0,
            date_diff('month', cohort_sizes.cohort_month, last_month.last_activity_month)
        )) as months_since,
        cohort_sizes.cohort_customers,
    from cohort_sizes
    cross join last_month
),

activity as (
    select
        cohorts.cohort_month,
        date_diff('month', cohorts.cohort_month, active_months.activity_month) as months_since,
        count(*) as active_customers,
    from active_months
    inner join cohorts
        on active_months.customer_id = cohorts.customer_id
    group by cohorts.cohort_month, months_since
),

final as (
    select
        grid.cohort_month::date as cohort_month,
        grid.months_since::bigint as months_since,
        grid.cohort_customers::bigint as cohort_customers,
        coalesce(activity.active_customers, 0)::bigint as active_customers,
        (coalesce(activity.active_customers, 0) / nullif(grid.cohort_customers, 0))::double
            as retention_rate,
    from grid
    left join activity
        on grid.cohort_month = activity.cohort_month
        and grid.months_since = activity.months_since
)

select * from final

{#-
    Reporting calendar of the metric marts (model spec section 6): a `timestamptz` becomes the
    day it falls on in var('reporting_timezone'), converted before the cast so a contact at
    01:00 UTC is counted on the previous day in America/Sao_Paulo. Months are the first day of
    that local date's month, as a date (DuckDB's date_trunc returns a timestamp).
-#}
{% macro reporting_date(column) -%}
    timezone('{{ var("reporting_timezone", "UTC") }}', {{ column }})::date
{%- endmacro %}

{% macro reporting_month(column) -%}
    date_trunc('month', {{ reporting_date(column) }})::date
{%- endmacro %}

{#-
    Seconds from `start` to `end` (timestamptz), exact to the microsecond: the difference is
    taken in integer microseconds, because epoch(end) - epoch(start) subtracts two doubles near
    1.8e9 and keeps only about seven significant digits of the fraction.
-#}
{% macro seconds_between(start, end) -%}
    (epoch_us({{ end }}) - epoch_us({{ start }})) / 1000000.0
{%- endmacro %}

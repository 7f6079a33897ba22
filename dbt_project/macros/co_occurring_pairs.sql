{#-
    The identity graph's edges as pairs of node_seq: two nodes seen on the same record, once
    per pair, smaller node first. `observations` names a relation or CTE with record_key and
    node_seq (int_identifiers_screened counts degrees over them, int_identifier_edges keeps the
    ones between linkable nodes).
-#}
{% macro co_occurring_pairs(observations) -%}
    select distinct
        left_side.node_seq as node_a,
        right_side.node_seq as node_b,
    from {{ observations }} as left_side
    inner join {{ observations }} as right_side
        on left_side.record_key = right_side.record_key
        and left_side.node_seq < right_side.node_seq
{%- endmacro %}

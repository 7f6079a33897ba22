-- The nodes whose int_identifier_components row the scoped identity rebuild replaces
-- (docs/dbt.md, "The scoped identity chain", item 5): the nodes that records of
-- int_identity_scope_observations show (the scope nodes among them), gone scope nodes, and
-- every node of a component any of those was in at the last build. No edge leaves this set:
-- an edge this build wrote touches a scope node and joins two nodes one scope record shows
-- (int_identifier_edges), and an edge it kept joins two nodes of one old component. So the
-- components of these nodes are found from the edges that touch them alone, and every
-- other node keeps its component, label and size. int_identity_scope_component_labels fails
-- the build if a component it finds reaches outside. On a full build
-- (int_identity_build.is_full), empty: the components are found over every edge.
{% set full = identity_scope_is_full() %}
-- depends_on: {{ ref('int_identity_build') }}
-- depends_on: {{ ref('int_identity_scope_nodes') }}
-- depends_on: {{ ref('int_identity_scope_observations') }}
{% if full %}

select null::bigint as node_id where false

{% else %}

with

touched as (
    select node_id from {{ ref('int_identity_scope_nodes') }}
    union
    select node_id from {{ ref('int_identity_scope_observations') }}
),

final as (
    {{ with_old_components('touched', 'int_identifier_components', 'node_id', 'label_id') }}
)

select * from final

{% endif %}

{#-
    The scoped rebuild of the identity chain (docs/dbt.md, "The scoped identity chain").

    The chain is int_identity_build -> int_identity_changed_records ->
    int_identity_scope_nodes -> int_identity_scope_observations ->
    int_identifiers_screened -> int_identifier_edges -> int_identity_scope_components ->
    int_identifier_components ->
    int_identity_scope_clusters -> int_identifiers_clustered -> int_identity_scope_contacts ->
    int_contacts_identified, then the request chain (int_request_scope_contacts ->
    int_request_links -> int_request_scope_components -> int_request_components ->
    int_request_scope_requests ->
    int_request_contacts -> int_contacts_stitched_to_requests), and last
    int_identifiers_observed. The scope models compare the records
    staging holds now with int_identifiers_observed as the last complete build left it, which
    is why that table is written last: a build that fails half way leaves it as it was, and the
    next build takes the same changes (and any newer) again.
-#}

{% macro built_relation(model_name) -%}
    {#- The table dbt built for `model_name`, or none: read without ref(), so a scope model
        can see the state a model of the chain had before this build replaces it. -#}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ model_name] -%}
    {{ return(adapter.get_relation(
        database=node.database, schema=node.schema, identifier=node.alias
    )) }}
{%- endmacro %}

{% macro with_old_components(touched, components_model, node_column, label_column) -%}
    {#- The nodes of the CTE `touched` (one column, node_column) and every node of a component
        one of them was in at the last build: `components_model` as built, read before this
        build replaces it. The scope of a scoped components pass (int_identity_scope_components,
        int_request_scope_components), which must hold whole components then and now. -#}
    select {{ node_column }} from {{ touched }}
    union
    select {{ node_column }}
    from {{ built_relation(components_model) }}
    where {{ label_column }} in (
        select {{ label_column }}
        from {{ built_relation(components_model) }}
        where {{ node_column }} in (select {{ node_column }} from {{ touched }})
    )
{%- endmacro %}

{% macro identity_full_rebuild() -%}
    {#- True when the identity chain has no complete earlier build to scope against:
        --full-refresh, or one of its incremental tables (or a table a scope model reads as
        the last build's, fct_survey_responses) is missing. int_identity_build
        adds a changed setting and records the answer for the rest of the chain. -#}
    {%- if flags.FULL_REFRESH -%}
        {{ return(true) }}
    {%- endif -%}
    {%- for model_name in [
        'int_sms_contacts_sessionized',
        'int_messenger_contacts_aggregated',
        'int_contacts_unioned',
        'int_identifiers_observed',
        'int_identifiers_screened',
        'int_identifier_edges',
        'int_identifier_components',
        'int_identifiers_clustered',
        'int_contacts_identified',
        'int_request_links',
        'int_request_components',
        'int_request_contacts',
        'int_contacts_stitched_to_requests',
        'int_identifiers_aggregated_to_customers',
        'fct_contacts',
        'fct_survey_responses',
        'fct_requests',
        'fct_journey_steps',
        'dim_customers',
    ] -%}
        {%- if built_relation(model_name) is none -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}

{% macro node_id(identifier_key) -%}
    {#- A node's stable integer id: the low 63 bits of the md5 of its key. Unlike a rank over
        all keys it does not move when other nodes come or go, so an incremental build can
        keep the rows of nodes it does not touch. Collisions are caught by the unique test on
        int_identifiers_screened.node_id (odds about 1 in 700,000 at 5M nodes). -#}
    (md5_number_lower({{ identifier_key }}) >> 1)::bigint
{%- endmacro %}

{% macro identifier_observations(contacts, crm_contacts) -%}
    {#- One row per (record, identifier) of the given contacts (int_contacts_unioned's
        columns) and CRM rows (stg_crm__contacts'), with the record's validated_at. -#}
    select
        record_key,
        record_kind,
        identifier_type,
        identifier_value,
        identifier_type || ':' || identifier_value as identifier_key,
        min(observed_at) as observed_at,
        max(validated_at) as validated_at,
    from (
        select * from (
            unpivot (
                select
                    contact_id as record_key,
                    'contact' as record_kind,
                    started_at as observed_at,
                    validated_at,
                    email,
                    phone,
                    messenger_psid,
                    chat_contact_id,
                    crm_id,
                from {{ contacts }}
            )
            on email, phone, messenger_psid, chat_contact_id, crm_id
            into name identifier_type value identifier_value
        )
        union all by name
        select * from (
            unpivot (
                select
                    'crm:' || crm_contact_id as record_key,
                    'crm' as record_kind,
                    updated_at as observed_at,
                    validated_at,
                    email,
                    phone,
                    crm_contact_id as crm_id,
                from {{ crm_contacts }}
            )
            on email, phone, crm_id
            into name identifier_type value identifier_value
        )
    )
    where identifier_value is not null and identifier_value <> ''
    group by record_key, record_kind, identifier_type, identifier_value
{%- endmacro %}

{% macro changed_record_observations(changed_records) -%}
    {#- identifier_observations of the records in `changed_records` (record_key, record_kind)
        as staging holds them now; a gone record has none. -#}
    select * from (
        {{ identifier_observations(
            '(select * from ' ~ ref('int_contacts_unioned') ~ ' where contact_id in ('
            ~ 'select record_key from ' ~ changed_records ~ " where record_kind = 'contact'))",
            '(select * from ' ~ ref('stg_crm__contacts') ~ " where 'crm:' || crm_contact_id in ("
            ~ 'select record_key from ' ~ changed_records ~ " where record_kind = 'crm'))",
        ) }}
    )
{%- endmacro %}

{% macro identity_scope_is_full() -%}
    {#- Whether this build of the identity chain recomputes everything
        (int_identity_build.is_full, decided once, before any table of the chain changes). -#}
    {%- if not execute or takes_every_row() -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set result = run_query('select is_full from ' ~ ref('int_identity_build')) -%}
    {{ return(result.columns[0].values()[0]) }}
{%- endmacro %}

{% macro writes_every_row() -%}
    {#- Whether the incremental model being built writes every row this time: its table is
        created now, or the chains build in full (identity_scope_is_full). Its scope is then
        every row, and a model leaves its scope filters out: each `in (select ...)` built a
        hash table of every key for nothing (docs/performance.md, "Twenty-second round").
        is_incremental() comes first so that a dbt unit test of the table build (which
        overrides it to false) never queries int_identity_build. -#}
    {{ return(not is_incremental() or identity_scope_is_full()) }}
{%- endmacro %}

{% macro built_is_full() -%}
    {#- int_identity_build.is_full, read from the table as built (a test must not ref() it)
        while compiling, just before the node runs; identity_scope_is_full reads it through
        ref(), so the dbt unit tests of the models see their fixture. A full build's deletes
        and tests then carry no scope at all: under `or`, DuckDB plans each `in (...)` as a
        mark join whatever `is_full` says, over scopes that hold every row on a full build. -#}
    {%- set result = run_query('select is_full from ' ~ built_relation('int_identity_build')) -%}
    {{ return(result.columns[0].values()[0]) }}
{%- endmacro %}

{% macro delete_identity_scope(key_column, scope_model, scope_column=none) -%}
    {#- pre_hook of an incremental model of the chain: drop the rows whose key_column (or any
        of several) is in the scope model (delete_changed). -#}
    {%- set keys = [key_column] if key_column is string else key_column -%}
    {%- set query = 'select ' ~ (scope_column or keys[0]) ~ ' from ' ~ ref(scope_model) -%}
    {{ delete_changed(keys, query) }}
{%- endmacro %}

{% macro delete_changed(key, scope_query) -%}
    {#- pre_hook of a scoped model: the rows whose `key` (an expression over the model's
        columns, or a list of them: any one) is in `scope_query` are the rows this build
        replaces, and the model's select writes them again as they are now (in one
        transaction). With incremental_strategy 'append' the hook deletes them; with
        'replace_changed' (the models whose scope rows mostly come back unchanged) it
        stages their rowids, and the strategy deletes only those the select does not write
        again exactly as they are. On a full build (int_identity_build.is_full) it deletes
        every row. On a first build or --full-refresh there is no table to delete from.
        Full or scoped is read while the hook is rendered (identity_scope_is_full), not
        inside the query (macro built_is_full says why). -#}
    {%- if is_incremental() -%}
        {%- if identity_scope_is_full() -%}
        delete from {{ this }}
        {%- else -%}
        {%- if config.get('incremental_strategy') == 'replace_changed' -%}
        create or replace temp table {{ scope_rows_relation() }} as
        select rowid as dbt_rowid from {{ this }}
        {%- else -%}
        delete from {{ this }}
        {%- endif %}
        where
            {%- for expression in ([key] if key is string else key) %}
            {{ 'or ' if not loop.first }}{{ expression }} in ({{ scope_query }})
            {%- endfor %}
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{% macro scope_rows_relation(suffix='scope') -%}
    {#- A temporary table of the model being built, for the scoped replace
        (delete_changed, get_incremental_replace_changed_sql). -#}
    temp.main.{{ adapter.quote(this.identifier ~ '__dbt_' ~ suffix) }}
{%- endmacro %}

{% macro get_incremental_replace_changed_sql(arg_dict) -%}
    {#- The incremental strategy of the scoped models whose scopes come back mostly as they
        were. A scoped build replaces the rows delete_changed staged (the scope) with what
        the select wrote (temp_relation), row for row: a scope row the select wrote again
        exactly as it is stays where it is, the other scope rows are deleted, and only the
        new or changed rows are inserted. Of a 5M increment's scope rows, 46 %
        (dim_customers) to 100 % come back unchanged, 93-99 % in the facts, and DuckDB pays
        for every deleted row when it checkpoints (0.8 s for 128k fct_contacts rows;
        docs/performance.md, "Twelfth round"). Equal is `is not distinct from` in every
        column. A scope row is kept only when it equals exactly one written row and no
        other scope row equals that one, so duplicates are replaced, never merged: the
        table ends exactly as deleting every scope row and inserting every written row
        would leave it. A full build (its pre_hook deleted every row) appends. -#}
    {%- set target, written = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
    {%- set columns = [] -%}
    {%- for column in arg_dict['dest_columns'] -%}
        {%- do columns.append(adapter.quote(column.name)) -%}
    {%- endfor -%}
    {%- set csv = columns | join(', ') -%}
    {%- if identity_scope_is_full() -%}
        insert into {{ target }} ({{ csv }})
        select {{ csv }} from {{ written }}
    {%- else -%}
        {%- set scope, old, kept = scope_rows_relation(), scope_rows_relation('old'), scope_rows_relation('kept') -%}
        create or replace temp table {{ old }} as
        select rowid as dbt_rowid, {{ csv }}
        from {{ target }}
        where rowid in (select dbt_rowid from {{ scope }});

        create or replace temp table {{ kept }} as
        select dbt_old.dbt_rowid, dbt_new.rowid as dbt_new_rowid
        from {{ old }} as dbt_old
        inner join {{ written }} as dbt_new
            on
            {%- for column in columns %}
            {{ 'and ' if not loop.first }}dbt_old.{{ column }} is not distinct from dbt_new.{{ column }}
            {%- endfor %}
        qualify count(*) over (partition by dbt_old.dbt_rowid) = 1
            and count(*) over (partition by dbt_new.rowid) = 1;

        delete from {{ target }}
        where rowid in (
            select dbt_rowid from {{ old }}
            where dbt_rowid not in (select dbt_rowid from {{ kept }})
        );

        insert into {{ target }} ({{ csv }})
        select {{ csv }} from {{ written }}
        where rowid not in (select dbt_new_rowid from {{ kept }});

        drop table {{ scope }};
        drop table {{ old }};
        drop table {{ kept }}
    {%- endif -%}
{%- endmacro %}

{% macro takes_every_row() -%}
    {#- Whether the model being built takes every row whatever this build's scope: under
        --full-refresh, or when an incremental model's table is created now (a first build,
        or its table was dropped: a scoped select would leave it with the scope's rows
        alone). Known while compiling, without a query. -#}
    {{ return(
        flags.FULL_REFRESH
        or (config.get('materialized') == 'incremental' and not is_incremental())
    ) }}
{%- endmacro %}

{% macro duckdb__get_where_subquery(relation) -%}
    {#- dbt's `where` test config (default__get_where_subquery), plus one form of our own for
        the incremental chains:
        `where: "scope: <column> in <scope model>[.<scope column>] [or <column> in ...]"`
        tests only the rows whose <column> is in the scope model (any clause), or all rows on
        a full build. The clauses name what this build wrote into the tested table and, for
        a relationships test, what it deleted from the parent table (the models' pre_hooks
        delete by the same scope models). That is as strong as testing every row, given
        that the last build passed its tests (a build that fails a test stops before
        int_identifiers_observed, so the next build is full): a duplicate of a written row's
        value has that value too, and a row can lose its parent only if it was written now
        or its parent was deleted now. A build without the chain's tables (a selection of
        the metric marts over hand-written facts, as tests/conftest.py builds) has no scope:
        every row. -#}
    {%- set where = config.get('where', '') -%}
    {%- if where and where.startswith('scope:') -%}
        {%- set clauses = [] -%}
        {%- for clause in where[6:].split(' or ') -%}
            {%- set column, scope = clause.split(' in ') | map('trim') | list -%}
            {%- set scope_model, scope_column = (scope ~ '.' ~ column).split('.')[:2] -%}
            {%- if built_relation('int_identity_build') is none or built_relation(scope_model) is none -%}
                {{ return(relation) }}
            {%- endif -%}
            {%- do clauses.append(
                column ~ ' in (select ' ~ scope_column ~ ' from ' ~ built_relation(scope_model) ~ ')'
            ) -%}
        {%- endfor -%}
        {#- a full build tests the whole table (built_is_full: 5M contacts in the scopes ran
            out of memory at 1GB when this was decided inside the query) -#}
        {%- if built_is_full() -%}
            {{ return(relation) }}
        {%- endif -%}
        {%- set filtered -%}
            (
                select * from {{ relation }}
                where
                {%- for clause in clauses %}
                    {{ 'or ' if not loop.first }}{{ clause }}
                {%- endfor %}
            ) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(dbt.default__get_where_subquery(relation)) }}
    {%- endif -%}
{%- endmacro %}

"""The request links' components (model spec section 4) for the contacts a build replaces in
int_request_components, as a dbt Python model; int_request_components keeps them for every
linked contact.

Every contact on a link of int_request_links that touches int_request_scope_components
(every link on a full build; contact_node, its stable node id), labelled with the smallest
node of its component (request_node: an id for the component, not its first contact;
int_request_contacts names the request by key) and with the component's size. That set holds
whole components, old and new (the argument is in that model), so the labels are the ones a
pass over every link would give; a component found here with a contact outside the set fails
the build, since int_request_components would keep a stale row for that contact. Contacts
without a link are not here; int_contacts_stitched_to_requests makes each of them a request
of its own.

Why Python: ``harmonia.graph.label_components`` (scipy) takes one pass in memory outside
DuckDB, for the same reason as int_identity_scope_component_labels. The recursive CTE it
replaced sat in the same statement as the windows and joins of request stitching. A
5M-contact full build at a 1GB memory_limit failed there whenever dbt's second thread ran a
model beside it. Scoped since session 10: the full pass over 2M links took 1.3-1.8 s of
every 5M increment.
"""

from harmonia.graph import label_scope_components


def model(dbt, session):
    dbt.config(materialized="table")
    ((is_full,),) = dbt.ref("int_identity_build").project("is_full").fetchall()
    components = label_scope_components(
        dbt.ref("int_request_links").project("node_a, node_b"),
        dbt.ref("int_request_scope_components"),
        "contact_node",
        is_full=is_full,
        model="int_request_components",
    )
    return components.rename_columns(["contact_node", "request_node", "request_contacts"])

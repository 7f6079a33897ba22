"""The request links' components (model spec section 4), as a dbt Python model.

Every contact on a link of int_request_links (its stable node id, contact_node), labelled
with the smallest node of its component (request_node: an id for the component, not its
first contact; int_request_contacts names the request by key) and with the component's size.
Contacts without a link are not here; int_contacts_stitched_to_requests makes each of them a
request of its own.

Why Python: ``harmonia.graph.label_components`` (scipy) takes one pass in memory outside
DuckDB, for the same reason as int_identifier_components. The recursive CTE it replaced sat
in the same statement as the windows and joins of request stitching. A 5M-contact full build
at a 1GB memory_limit failed there whenever dbt's second thread ran a model beside it. A full
pass every build, also when the links are scoped: 2M links at 5M contacts take seconds.
"""

from harmonia.graph import label_components


def model(dbt, session):
    dbt.config(materialized="table")
    links = dbt.ref("int_request_links").project("node_a, node_b").fetchnumpy()
    components = label_components(links["node_a"], links["node_b"])
    return components.rename_columns(["contact_node", "request_node", "request_contacts"])

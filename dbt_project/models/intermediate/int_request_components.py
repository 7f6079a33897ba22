"""The request links' components (model spec section 4), as a dbt Python model.

Every contact on a link of int_request_links, labelled with the smallest contact_seq of its
component (the request's first contact) and with the component's size. Contacts without a
link are not here; int_contacts_stitched_to_requests makes each of them a request of its own.

Why Python: ``harmonia.graph.label_components`` (scipy) takes one pass in memory outside
DuckDB, for the same reason as int_identifier_components. The recursive CTE it replaced sat
in the same statement as the windows and joins of request stitching. A 5M-contact full build
at a 1GB memory_limit failed there whenever dbt's second thread ran a model beside it.
"""

from harmonia.graph import label_components


def model(dbt, session):
    dbt.config(materialized="table")
    links = dbt.ref("int_request_links").fetchnumpy()
    components = label_components(links["node_a"], links["node_b"])
    return components.rename_columns(["contact_seq", "request_seq", "request_contacts"])

"""The shape of a generated contact-center world: the contract between the generator
(``harmonia.demo.generator``) and the demo channel APIs (``harmonia.demo.server``).

A world is four column tables (``pyarrow.Table``). The generator decides *what happened*
(customers, requests, contacts, surveys, with the truth about who and which request); the
server decides only *how each vendor shows it* (envelope, field names, formats, pagination).
All times are UTC epoch seconds as int64 (null = did not happen). Row order is the natural
order given below; every table is deterministic for a given ``(seed, size)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

CHANNELS = ("voice", "sms", "email", "chat", "messenger")
SOURCES = (*CHANNELS, "surveys", "crm")

#: customers: one row per true customer, ordered by customer_idx.
CUSTOMERS = pa.schema(
    [
        ("customer_idx", pa.int64()),  # 0..n-1, the ground-truth customer
        ("name", pa.string()),
        ("email", pa.string()),  # canonical lower-case e-mail; null if the customer has none
        ("phone_e164", pa.string()),  # canonical own phone, "+55..."; null if none
        ("shared_phone_e164", pa.string()),  # family phone / company switchboard; null if none
        ("shared_phone_kind", pa.string()),  # "family" | "switchboard" | null
        ("messenger_psid", pa.string()),  # page-scoped id; null if never used Messenger
        ("chat_contact_id", pa.string()),  # Intercom contact id; null if never used chat
        ("crm_id", pa.string()),  # HubSpot object id; null if not in the CRM
        ("crm_created_at", pa.int64()),
        ("crm_updated_at", pa.int64()),  # last modification (may be after first delivery)
        # added by the generator's author: the phone the CRM row holds (a company's contacts
        # are filed under its switchboard; else own phone, else the family landline); null if
        # not in the CRM. The CRM row's e-mail is ``email``.
        ("crm_phone_e164", pa.string()),
    ]
)

#: requests: one row per true request, ordered by (opened_at, request_idx).
REQUESTS = pa.schema(
    [
        ("request_idx", pa.int64()),
        ("customer_idx", pa.int64()),
        ("topic", pa.string()),  # canonical topic (see TOPICS in the generator)
        ("protocol", pa.string()),  # protocol number given to the customer; null if none
        ("opened_at", pa.int64()),
        ("resolved", pa.bool_()),
    ]
)

#: contacts: one row per true contact, ordered by (started_at, contact_idx).
CONTACTS = pa.schema(
    [
        ("contact_idx", pa.int64()),
        ("source_id", pa.string()),  # the vendor's id (ContactId, SM sid, ticket id, ...)
        ("channel", pa.string()),  # voice | sms | email | chat | messenger
        ("customer_idx", pa.int64()),  # ground truth
        ("request_idx", pa.int64()),  # ground truth
        ("direction", pa.string()),  # inbound | outbound
        ("handled_by", pa.string()),  # agent | bot
        ("started_at", pa.int64()),
        ("queue_seconds", pa.int64()),  # voice only; null elsewhere or if never connected
        ("first_response_at", pa.int64()),  # first company-side reply (agent or bot)
        ("first_agent_response_at", pa.int64()),  # first human reply
        ("ended_at", pa.int64()),  # null = still open at the end of the world
        ("handle_seconds", pa.int64()),  # null where the vendor reports none
        ("abandoned", pa.bool_()),
        ("resolved", pa.bool_()),
        ("source_topic", pa.string()),  # the channel's own code (disposition, tag, intent...)
        ("quoted_protocol", pa.string()),  # protocol quoted in this contact; null if none
        # identifiers as this channel sees them (raw, in the channel's own format)
        ("phone_raw", pa.string()),  # e.g. "(11) 98765-4321", "+55 11 98765 4321"
        ("email_raw", pa.string()),  # may differ in case/whitespace from the canonical one
        ("messenger_psid", pa.string()),
        ("chat_contact_id", pa.string()),
        ("crm_id", pa.string()),  # e.g. Connect Attributes.crm_id after IVR authentication
        ("n_messages", pa.int64()),  # sms / messenger / chat: messages in the thread
        # versions: the record as first delivered and, for some, a later update
        ("updated_at", pa.int64()),  # time of the final version
        ("first_version_at", pa.int64()),  # when the first version appeared (<= updated_at)
    ]
)

#: surveys: one row per survey answer, ordered by (created_at, survey_idx).
SURVEYS = pa.schema(
    [
        ("survey_idx", pa.int64()),
        ("source_id", pa.string()),  # Delighted response id
        ("contact_idx", pa.int64()),  # the surveyed contact
        ("customer_idx", pa.int64()),
        ("survey_type", pa.string()),  # "nps" (0-10) | "csat" (1-5)
        ("score", pa.int64()),
        ("comment", pa.string()),
        ("created_at", pa.int64()),
        ("updated_at", pa.int64()),
    ]
)


@dataclass(frozen=True)
class World:
    """A generated contact-center world plus the parameters that produced it."""

    seed: int
    start: int  # epoch seconds, first instant of the world (inclusive)
    end: int  # epoch seconds, last instant of the world (exclusive)
    customers: pa.Table
    requests: pa.Table
    contacts: pa.Table
    surveys: pa.Table
    params: dict = field(default_factory=dict)

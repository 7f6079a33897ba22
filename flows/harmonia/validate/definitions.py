"""The checks per source entity: what the dbt models rely on, field by field.

One ``RecordCheck`` per ``(source, entity)`` landed by ``harmonia.extract`` — its suite is
``<source>_<entity>`` in ``expectations/``. Paths follow the vendor shapes the demo APIs serve
(``docs/demo-apis.md``, ``harmonia.demo.server``): Amazon Connect contact records (epoch
seconds), Twilio messages (RFC 2822 dates, numbers as strings), Zendesk tickets and metric sets
(ISO 8601), Intercom conversations (epoch), Meta Graph conversations and messages (ISO 8601
``+0000``), Delighted responses (epoch) and HubSpot contacts (ISO 8601 with milliseconds).

Every check also gets, from ``harmonia.validate.suites``: the vendor id present, and
``record_id`` + ``record_version`` unique within the batch. Fields not listed here are not
looked at, so new vendor fields (schema drift) pass and stay in the raw JSON.
"""

from __future__ import annotations

from harmonia.validate.fields import Field, Order, Range, RecordCheck

CONNECT_INITIATION = (
    "INBOUND", "OUTBOUND", "TRANSFER", "QUEUE_TRANSFER", "CALLBACK", "API", "DISCONNECT",
    "MONITOR", "EXTERNAL_OUTBOUND", "WEBRTC_API", "AGENT_REPLY", "FLOW",
)  # fmt: skip
TWILIO_DIRECTIONS = ("inbound", "outbound-api", "outbound-call", "outbound-reply")
TWILIO_STATUS = (
    "queued", "sending", "sent", "failed", "delivered", "undelivered", "receiving", "received",
    "accepted", "scheduled", "read", "partially_delivered", "canceled",
)  # fmt: skip
ZENDESK_STATUS = ("new", "open", "pending", "hold", "solved", "closed")
INTERCOM_DELIVERED_AS = (
    "customer_initiated", "operator_initiated", "automated", "campaigns_initiated",
    "admin_initiated",
)  # fmt: skip

#: Zendesk custom field ids the demo account uses (protocol, phone, time spent in seconds)
ZD_FIELD_PROTOCOL = 360000000101
ZD_FIELD_PHONE = 360000000102
ZD_FIELD_TIME_SPENT = 360000000103


def _epoch(name: str, path: str, required: bool = False, why: str = "") -> Field:
    return Field(name, path, "timestamp", required=required, ts_format="epoch", why=why)


def _iso(name: str, path: str, required: bool = False, why: str = "") -> Field:
    return Field(name, path, "timestamp", required=required, ts_format="iso8601", why=why)


def _seconds(name: str, path: str, why: str = "") -> Field:
    return Field(name, path, "number", min_value=0, why=why)


VOICE_CONTACTS = RecordCheck(
    source="voice",
    entity="contacts",
    primary_key="ContactId",
    description="Amazon Connect contact records (SearchContacts)",
    fields=(
        Field("channel", "Channel", "enum", required=True, values=("VOICE", "CHAT", "TASK")),
        Field("initiation_method", "InitiationMethod", "enum", required=True,
              values=CONNECT_INITIATION, why="direction"),
        _epoch("initiated_at", "InitiationTimestamp", required=True, why="started_at"),
        _epoch("disconnected_at", "DisconnectTimestamp", why="ended_at"),
        _epoch("last_updated_at", "LastUpdateTimestamp", required=True, why="record version"),
        Field("customer_phone", "CustomerEndpoint.Address", "phone", why="identity stitching"),
        _epoch("enqueued_at", "Queue.EnqueueTimestamp"),
        _epoch("dequeued_at", "Queue.DequeueTimestamp"),
        _seconds("queue_duration", "Queue.Duration", why="queue_seconds"),
        _epoch("agent_connected_at", "Agent.ConnectedToAgentTimestamp", why="first_response_at"),
        _seconds("agent_interaction_duration", "Agent.AgentInteractionDuration",
                 why="handle_seconds"),
        _epoch("after_contact_work_end_at", "Agent.AfterContactWorkEndTimestamp"),
        Field("attributes", "Attributes", "object"),
        Field("disposition", "Attributes.disposition", "string", why="source_topic"),
        Field("protocol", "Attributes.protocol", "string", why="request_ref"),
        Field("crm_id", "Attributes.crm_id", "string", why="identity stitching"),
        Field("resolved", "Attributes.resolved", "enum", values=("true", "false"), why="resolved"),
    ),
    orders=(
        Order("initiated_at", "agent_connected_at"),
        Order("agent_connected_at", "disconnected_at"),
        Order("initiated_at", "disconnected_at"),
        Order("enqueued_at", "dequeued_at"),
    ),
)  # fmt: skip

SMS_MESSAGES = RecordCheck(
    source="sms",
    entity="messages",
    primary_key="sid",
    description="Twilio Programmable Messaging messages",
    fields=(
        Field("account_sid", "account_sid", "string", required=True),
        Field("date_created", "date_created", "timestamp", ts_format="rfc2822"),
        Field("date_sent", "date_sent", "timestamp", required=True, ts_format="rfc2822",
              why="message time: started_at / first_response_at / ended_at"),
        Field("date_updated", "date_updated", "timestamp", required=True, ts_format="rfc2822"),
        Field("direction", "direction", "enum", required=True, values=TWILIO_DIRECTIONS,
              why="direction; who replied"),
        Field("status", "status", "enum", required=True, values=TWILIO_STATUS),
        Field("from_phone", "from", "phone", required=True, why="identity stitching"),
        Field("to_phone", "to", "phone", required=True, why="identity stitching"),
        Field("body", "body", "string"),
        Field("messaging_service_sid", "messaging_service_sid", "string", why="bot or agent"),
        Field("num_segments", "num_segments", "number", types=("numeric_string",), min_value=0),
        Field("num_media", "num_media", "number", types=("numeric_string",), min_value=0),
        Field("price", "price", "number", types=("numeric_string",)),
    ),
    orders=(Order("date_created", "date_updated"), Order("date_sent", "date_updated")),
)  # fmt: skip

EMAIL_TICKETS = RecordCheck(
    source="email",
    entity="tickets",
    primary_key="id",
    description="Zendesk tickets (incremental export)",
    fields=(
        _iso("created_at", "created_at", required=True, why="started_at"),
        _iso("updated_at", "updated_at", required=True, why="record version"),
        _epoch("generated_timestamp", "generated_timestamp", required=True, why="cursor"),
        Field("status", "status", "enum", required=True, values=ZENDESK_STATUS, why="resolved"),
        Field("via_channel", "via.channel", "string", required=True, why="direction"),
        Field("from_address", "via.source.from.address", "email", why="identity stitching"),
        Field("to_address", "via.source.to.address", "email", why="identity stitching"),
        Field("requester_id", "requester_id", "id"),
        Field("subject", "subject", "string"),
        Field("tags", "tags", "array", why="source_topic"),
        Field("custom_fields", "custom_fields", "array"),
        Field("protocol", f"custom_fields[id={ZD_FIELD_PROTOCOL}].value", "string",
              why="request_ref"),
        Field("requester_phone", f"custom_fields[id={ZD_FIELD_PHONE}].value", "phone",
              why="identity stitching"),
        _seconds("time_spent", f"custom_fields[id={ZD_FIELD_TIME_SPENT}].value",
                 why="handle_seconds"),
    ),
    orders=(Order("created_at", "updated_at"),),
)  # fmt: skip

EMAIL_METRIC_SETS = RecordCheck(
    source="email",
    entity="metric_sets",
    primary_key="id",
    description="Zendesk ticket metric sets (sideloaded with the tickets)",
    fields=(
        Field("ticket_id", "ticket_id", "id", required=True, why="joins the ticket"),
        _iso("created_at", "created_at", required=True),
        _iso("updated_at", "updated_at", required=True),
        _iso("assigned_at", "assigned_at", why="first_agent_response_at"),
        _iso("solved_at", "solved_at", why="ended_at"),
        _iso("latest_comment_added_at", "latest_comment_added_at"),
        Field("replies", "replies", "integer", min_value=0),
        Field("reopens", "reopens", "integer", min_value=0),
        _seconds("reply_time_seconds", "reply_time_in_seconds.calendar", why="first_response_at"),
        _seconds("reply_time_minutes", "reply_time_in_minutes.calendar"),
        _seconds("full_resolution_minutes", "full_resolution_time_in_minutes.calendar"),
    ),
    orders=(
        Order("created_at", "updated_at"),
        Order("created_at", "assigned_at"),
        Order("created_at", "solved_at"),
    ),
)  # fmt: skip

CHAT_CONVERSATIONS = RecordCheck(
    source="chat",
    entity="conversations",
    primary_key="id",
    description="Intercom conversations (agent and bot)",
    fields=(
        Field("type", "type", "enum", required=True, values=("conversation",)),
        _epoch("created_at", "created_at", required=True, why="started_at"),
        _epoch("updated_at", "updated_at", required=True, why="record version"),
        Field("state", "state", "enum", required=True, values=("open", "closed", "snoozed")),
        Field("delivered_as", "source.delivered_as", "enum", values=INTERCOM_DELIVERED_AS,
              why="direction"),
        Field("contact_id", "contacts.contacts.0.id", "id", why="identity stitching"),
        Field("phone", "custom_attributes.phone", "phone", why="identity stitching"),
        Field("email", "custom_attributes.email", "email", why="identity stitching"),
        Field("intent", "custom_attributes.intent", "string", why="source_topic"),
        Field("protocol", "custom_attributes.protocol", "string", why="request_ref"),
        Field("resolved", "custom_attributes.resolved", "bool", why="resolved"),
        _epoch("first_bot_reply_at", "custom_attributes.first_bot_reply_at",
               why="first_response_at (bot)"),
        _epoch("first_admin_reply_at", "statistics.first_admin_reply_at",
               why="first_agent_response_at"),
        _epoch("first_close_at", "statistics.first_close_at", why="ended_at"),
        _epoch("last_close_at", "statistics.last_close_at", why="ended_at"),
        _seconds("time_to_admin_reply", "statistics.time_to_admin_reply"),
        _seconds("time_to_first_close", "statistics.time_to_first_close"),
        _seconds("handling_time", "statistics.handling_time", why="handle_seconds"),
        Field("count_conversation_parts", "statistics.count_conversation_parts", "integer",
              min_value=0),
        Field("count_reopens", "statistics.count_reopens", "integer", min_value=0),
        Field("ai_agent_participated", "ai_agent_participated", "bool", why="handled_by"),
    ),
    orders=(
        Order("created_at", "first_bot_reply_at"),
        Order("created_at", "first_admin_reply_at"),
        Order("first_admin_reply_at", "last_close_at"),
        Order("first_bot_reply_at", "last_close_at"),
        Order("created_at", "first_close_at"),
        Order("first_close_at", "last_close_at"),
    ),
)  # fmt: skip

MESSENGER_CONVERSATIONS = RecordCheck(
    source="messenger",
    entity="conversations",
    primary_key="id",
    description="Meta Graph page conversations (platform=messenger)",
    fields=(
        _iso("updated_time", "updated_time", required=True, why="record version / watermark"),
        Field("message_count", "message_count", "integer", min_value=0),
        Field("link", "link", "string"),
        Field("participants", "participants.data", "array", required=True,
              why="identity stitching"),
        Field("customer_psid", "participants.data.0.id", "id", why="identity stitching"),
        Field("customer_email", "participants.data.0.email", "email", why="identity stitching"),
    ),
)  # fmt: skip

MESSENGER_MESSAGES = RecordCheck(
    source="messenger",
    entity="messages",
    primary_key="id",
    description="Meta Graph conversation messages",
    fields=(
        _iso("created_time", "created_time", required=True,
             why="started_at / first_response_at / ended_at"),
        Field("from_id", "from.id", "id", required=True, why="who wrote it; identity"),
        Field("from_email", "from.email", "email", why="identity stitching"),
        Field("to_id", "to.data.0.id", "id"),
        Field("message", "message", "string"),
    ),
)  # fmt: skip

SURVEYS_RESPONSES = RecordCheck(
    source="surveys",
    entity="responses",
    primary_key="id",
    description="Delighted survey responses (NPS 0–10, CSAT 1–5)",
    fields=(
        Field("survey_type", "survey_type", "enum", required=True, values=("nps", "csat")),
        Field("score", "score", "integer", required=True, why="NPS / CSAT"),
        _epoch("created_at", "created_at", required=True, why="answer month"),
        _epoch("updated_at", "updated_at", required=True, why="record version"),
        Field("person_id", "person.id", "id"),
        Field("person_email", "person.email", "email", why="identity stitching"),
        Field("person_phone", "person.phone_number", "phone", why="identity stitching"),
        Field("contact_ref", "person_properties.contact_ref", "string",
              why="surveyed contact"),
        Field("comment", "comment", "string"),
    ),
    orders=(Order("created_at", "updated_at"),),
    ranges=(
        Range("score", 0, 10, when=("survey_type", "nps")),
        Range("score", 1, 5, when=("survey_type", "csat")),
    ),
)  # fmt: skip

CRM_CONTACTS = RecordCheck(
    source="crm",
    entity="contacts",
    primary_key="id",
    description="HubSpot CRM contacts",
    fields=(
        _iso("created_at", "createdAt", required=True),
        _iso("updated_at", "updatedAt", required=True, why="record version"),
        Field("archived", "archived", "bool"),
        Field("properties", "properties", "object", required=True),
        Field("email", "properties.email", "email", why="identity stitching"),
        Field("phone", "properties.phone", "phone", why="identity stitching"),
        Field("firstname", "properties.firstname", "string"),
        Field("lastname", "properties.lastname", "string"),
        _iso("createdate", "properties.createdate"),
        _iso("lastmodifieddate", "properties.lastmodifieddate"),
    ),
    orders=(Order("created_at", "updated_at"), Order("createdate", "lastmodifieddate")),
)  # fmt: skip

CHECKS: dict[str, RecordCheck] = {
    c.suite_name: c
    for c in (
        VOICE_CONTACTS,
        SMS_MESSAGES,
        EMAIL_TICKETS,
        EMAIL_METRIC_SETS,
        CHAT_CONVERSATIONS,
        MESSENGER_CONVERSATIONS,
        MESSENGER_MESSAGES,
        SURVEYS_RESPONSES,
        CRM_CONTACTS,
    )
}

#: the sources validation knows, in pipeline order
SOURCES_CHECKED: tuple[str, ...] = tuple(dict.fromkeys(c.source for c in CHECKS.values()))

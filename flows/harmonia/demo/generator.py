"""Deterministic generator of a Brazilian contact-center world with ground truth.

``generate_world(seed, customers=... | contacts=...)`` decides *what happened*: who the
customers are (and which identifiers they own or share), which requests they raised, which
contacts on which channels served each request, and which surveys they answered. The result is
a :class:`harmonia.demo.schema.World` whose four tables follow ``harmonia.demo.schema`` exactly;
the demo server renders them into vendor JSON and ``harmonia.demo.truth`` writes the truth.

Everything is vectorized with numpy (one ``PCG64`` stream per part of the world, spawned from
the seed) and assembled with pyarrow compute, so a million contacts take seconds. Every number
used here is documented, with its reason, in ``docs/demo-world.md``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harmonia.demo import WORLD_DAYS
from harmonia.demo.schema import CONTACTS, CUSTOMERS, REQUESTS, SURVEYS, World

#: 2026-11-01T00:00:00Z: the default end of the world (exclusive), fixed so worlds are stable.
END_ANCHOR = int(_dt.datetime(2026, 11, 1, tzinfo=_dt.UTC).timestamp())
#: America/Sao_Paulo has had no daylight saving time since 2019: UTC-3 all year.
SP_OFFSET = -3 * 3600
HOUR = 3600
DAY = 86400
#: the pipeline's ``request_window_hours`` default; the generator keeps its rules around it.
REQUEST_WINDOW = 72 * HOUR
#: the pipeline's ``max_identifier_degree`` default.
MAX_IDENTIFIER_DEGREE = 10
GENERATOR_VERSION = 1

CHANNEL_ORDER = ("voice", "sms", "email", "chat", "messenger")
VOICE, SMS, EMAIL, CHAT, MESSENGER = range(5)
#: share of contacts per channel (before identifier constraints move a few).
CHANNEL_MIX = np.array([0.35, 0.10, 0.15, 0.25, 0.15])

# --------------------------------------------------------------------------------------------
# topics and each channel's own codes for them
# --------------------------------------------------------------------------------------------

#: canonical topic -> (journey stage, share of requests)
TOPICS: dict[str, tuple[str, float]] = {
    "promotions": ("awareness", 0.03),
    "product_question": ("consideration", 0.10),
    "purchase_help": ("decision", 0.07),
    "payment_issue": ("purchase", 0.09),
    "delivery_status": ("post_purchase", 0.13),
    "delivery_delay": ("post_purchase", 0.08),
    "billing_copy": ("post_purchase", 0.14),
    "billing_dispute": ("post_purchase", 0.07),
    "cancellation": ("post_purchase", 0.07),
    "technical_support": ("post_purchase", 0.11),
    "account_update": ("post_purchase", 0.06),
    "complaint": ("post_purchase", 0.05),
}
TOPIC_NAMES = tuple(TOPICS)
TOPIC_WEIGHTS = np.array([w for _, w in TOPICS.values()])
TOPIC_WEIGHTS = TOPIC_WEIGHTS / TOPIC_WEIGHTS.sum()

#: channel -> topic -> the channel's own codes (voice dispositions, Zendesk tags, Intercom
#: intents, Messenger page labels, SMS keywords). Many-to-one onto the canonical topics.
SOURCE_TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "voice": {
        "promotions": ("DISP_PROMOCAO",),
        "product_question": ("DISP_DUVIDA_PRODUTO", "DISP_INFO_PRODUTO"),
        "purchase_help": ("DISP_AJUDA_COMPRA",),
        "payment_issue": ("DISP_PAGTO_RECUSADO", "DISP_PIX_NAO_CONFIRMADO"),
        "delivery_status": ("DISP_RASTREIO_PEDIDO",),
        "delivery_delay": ("DISP_ATRASO_ENTREGA",),
        "billing_copy": ("DISP_2VIA_BOLETO", "DISP_2VIA_FATURA"),
        "billing_dispute": ("DISP_CONTESTACAO_COBRANCA",),
        "cancellation": ("DISP_CANCELAMENTO", "DISP_RETENCAO"),
        "technical_support": ("DISP_SUPORTE_TECNICO",),
        "account_update": ("DISP_ALTERACAO_CADASTRO",),
        "complaint": ("DISP_RECLAMACAO",),
    },
    "sms": {
        "promotions": ("PROMO",),
        "product_question": ("INFO",),
        "purchase_help": ("COMPRA",),
        "payment_issue": ("PAGAMENTO", "PIX"),
        "delivery_status": ("PEDIDO", "RASTREIO"),
        "delivery_delay": ("ATRASO",),
        "billing_copy": ("BOLETO", "2VIA"),
        "billing_dispute": ("CONTESTAR",),
        "cancellation": ("CANCELAR", "SAIR"),
        "technical_support": ("SUPORTE",),
        "account_update": ("CADASTRO",),
        "complaint": ("RECLAMAR",),
    },
    "email": {
        "promotions": ("promocao_duvida",),
        "product_question": ("produto_duvida", "produto_especificacao"),
        "purchase_help": ("compra_ajuda",),
        "payment_issue": ("pagamento_recusado", "pagamento_pix"),
        "delivery_status": ("entrega_rastreio",),
        "delivery_delay": ("entrega_atraso", "entrega_prazo_excedido"),
        "billing_copy": ("cobranca_segunda_via",),
        "billing_dispute": ("cobranca_contestacao", "cobranca_indevida"),
        "cancellation": ("cancelamento_pedido", "cancelamento_assinatura"),
        "technical_support": ("suporte_tecnico",),
        "account_update": ("cadastro_alteracao",),
        "complaint": ("reclamacao", "ouvidoria"),
    },
    "chat": {
        "promotions": ("intent.promo.info",),
        "product_question": ("intent.product.question", "intent.product.compare"),
        "purchase_help": ("intent.purchase.help",),
        "payment_issue": ("intent.payment.declined", "intent.payment.pix"),
        "delivery_status": ("intent.delivery.track",),
        "delivery_delay": ("intent.delivery.late",),
        "billing_copy": ("intent.billing.copy",),
        "billing_dispute": ("intent.billing.dispute",),
        "cancellation": ("intent.order.cancel", "intent.subscription.cancel"),
        "technical_support": ("intent.tech.support", "intent.tech.app_error"),
        "account_update": ("intent.account.update",),
        "complaint": ("intent.complaint",),
    },
    "messenger": {
        "promotions": ("Promoções",),
        "product_question": ("Dúvida produto",),
        "purchase_help": ("Ajuda compra",),
        "payment_issue": ("Pagamento",),
        "delivery_status": ("Rastreio",),
        "delivery_delay": ("Atraso entrega",),
        "billing_copy": ("2ª via boleto",),
        "billing_dispute": ("Contestação",),
        "cancellation": ("Cancelamento",),
        "technical_support": ("Suporte técnico",),
        "account_update": ("Cadastro",),
        "complaint": ("Reclamação",),
    },
}
#: codes a channel started using that the topic map does not know yet (they become
#: ``unmapped`` downstream and are counted by the data-quality report).
UNMAPPED_CODES: dict[str, tuple[str, ...]] = {
    "voice": ("DISP_NOVO_FLUXO_URA",),
    "sms": ("AJUDA",),
    "email": ("triagem_pendente",),
    "chat": ("intent.fallback.unknown",),
    "messenger": ("Black Friday",),
}
#: share of contacts whose code is one of the channel's unmapped codes.
UNMAPPED_SHARE = 0.01


def topics_rows() -> list[tuple[str, str]]:
    """``(topic, journey_stage)`` for every canonical topic: the ``topics`` dbt seed."""
    return [(topic, stage) for topic, (stage, _) in TOPICS.items()]


def topic_map_rows(include_unmapped: bool = False) -> list[tuple[str, str, str | None]]:
    """``(channel, source_topic, topic)`` for every code the generator emits.

    By default only the mapped codes (exactly the ``topic_map`` dbt seed); with
    ``include_unmapped`` the deliberately unmapped codes too, with topic ``None``.
    """
    rows: list[tuple[str, str, str | None]] = [
        (channel, code, topic)
        for channel in CHANNEL_ORDER
        for topic in TOPIC_NAMES
        for code in SOURCE_TOPICS[channel][topic]
    ]
    if include_unmapped:
        rows += [(ch, code, None) for ch in CHANNEL_ORDER for code in UNMAPPED_CODES[ch]]
    return rows


# --------------------------------------------------------------------------------------------
# names, places
# --------------------------------------------------------------------------------------------

# fmt: off
_FIRST = (
    "Maria", "Ana", "Francisca", "Antônia", "Adriana", "Juliana", "Márcia", "Fernanda", "Patrícia",
    "Aline", "Sandra", "Camila", "Amanda", "Bruna", "Jéssica", "Letícia", "Júlia", "Luciana",
    "Vanessa", "Mariana", "Gabriela", "Beatriz", "Larissa", "Conceição", "Helena", "Alice",
    "Laura", "Manuela", "Valentina", "Sofia", "José", "João", "Antônio", "Francisco", "Carlos",
    "Paulo", "Pedro", "Lucas", "Luiz", "Marcos", "Luís", "Gabriel", "Rafael", "Daniel", "Marcelo",
    "Bruno", "Eduardo", "Felipe", "Raimundo", "Rodrigo", "Gustavo", "Mateus", "Thiago", "Leonardo",
    "Fábio", "André", "Ricardo", "Sérgio", "Vinícius", "Otávio",
)
_LAST = (
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
    "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes",
    "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques",
    "Machado", "Mendes", "Freitas", "Cardoso", "Ramos", "Gonçalves", "Santana", "Teixeira",
    "Araújo", "Melo", "Cavalcanti", "Monteiro", "Moura",
)
_ASCII = str.maketrans("áàâãéêíóôõúüçÁÂÃÉÍÓÔÚÇ", "aaaaeeiooouucAAAEIOOUC")
#: DDD (area code) -> weight, roughly by population of the metro areas.
_DDD = {
    "11": 0.28, "21": 0.12, "31": 0.07, "41": 0.05, "51": 0.05, "61": 0.05, "71": 0.05,
    "81": 0.05, "85": 0.05, "19": 0.04, "27": 0.03, "47": 0.03, "62": 0.03, "91": 0.03,
    "92": 0.03, "48": 0.02, "55": 0.02,
}  # fmt: skip
_EMAIL_DOMAINS = {
    "gmail.com": 0.45, "hotmail.com": 0.18, "outlook.com": 0.10, "yahoo.com.br": 0.08,
    "uol.com.br": 0.06, "bol.com.br": 0.05, "icloud.com": 0.05, "terra.com.br": 0.03,
}  # fmt: skip
_COMPANY_WORDS = (
    "metalurgica-aurora", "transportes-rio-verde", "construtora-horizonte", "grupo-ipe",
    "agro-cerrado", "clinica-boa-saude", "escritorio-prado", "distribuidora-litoral",
    "tecnova-sistemas", "padaria-estrela", "logistica-paulista", "hospital-santa-clara",
)
# fmt: on

_COMMENTS_GOOD = (
    "Atendimento rápido e resolveram meu problema.",
    "A atendente foi muito educada.",
    "Consegui a segunda via na hora, obrigado!",
    "Resolvido, gostei do atendimento.",
    "Muito bom, explicaram tudo direitinho.",
)
_COMMENTS_BAD = (
    "Demorou demais para me atenderem.",
    "Tive que ligar várias vezes e ainda não resolveram.",
    "Me passaram de um setor para outro.",
    "O problema continua, ninguém retornou.",
    "Cobraram errado de novo.",
)

# --------------------------------------------------------------------------------------------
# distributions (see docs/demo-world.md for the numbers and why)
# --------------------------------------------------------------------------------------------

#: arrivals by local hour (America/Sao_Paulo), relative weights
HOUR_PROFILE = np.array(
    [0.15, 0.08, 0.05, 0.04, 0.05, 0.12, 0.30, 0.60, 1.20, 1.90, 2.20, 2.10,
     1.70, 1.80, 2.00, 1.90, 1.70, 1.50, 1.20, 1.00, 0.90, 0.75, 0.50, 0.30]
)  # fmt: skip
#: arrivals by local weekday, Monday first
DOW_PROFILE = np.array([1.15, 1.05, 1.0, 1.0, 0.95, 0.55, 0.35])
#: contacts per request: 1, 2, 3, ...
CONTACTS_PER_REQUEST = np.array([0.60, 0.21, 0.10, 0.05, 0.02, 0.01, 0.006, 0.004])
CONTACTS_PER_REQUEST = CONTACTS_PER_REQUEST / CONTACTS_PER_REQUEST.sum()
#: extra requests per customer per 30 days ~ Poisson(Gamma(shape, scale)): mean 0.45
EXTRA_REQUESTS_SHAPE, EXTRA_REQUESTS_SCALE = 0.5, 0.9
#: probability a request gets a protocol number, by its first contact's channel
PROTOCOL_BY_CHANNEL = np.array([0.75, 0.10, 0.30, 0.30, 0.15])
#: probability a later contact goes outbound, by channel (first contacts are inbound)
OUTBOUND_LATER = np.array([0.25, 0.60, 0.10, 0.03, 0.0])
#: a protocol request's later contact comes back after a long pause (4-10 days), quoting it
LONG_GAP_SHARE = 0.18
#: a later contact quotes the protocol although within 72 h
QUOTE_SHORT_SHARE = 0.35
#: the share of each phone format by channel: "+55 11 98765-4321", "(11) 98765-4321",
#: "11987654321", "011 98765 4321", "+5511987654321"
PHONE_FORMATS = {
    VOICE: [0.25, 0.20, 0.20, 0.10, 0.25],
    SMS: [0.0, 0.0, 0.05, 0.0, 0.95],
    EMAIL: [0.10, 0.45, 0.25, 0.10, 0.10],
    CHAT: [0.20, 0.30, 0.30, 0.05, 0.15],
}
#: survey scores by tier: the surveyed contact resolved the request / a later contact did /
#: nobody did. NPS 0-10 (tier NPS +52, +18, -36), CSAT 1-5.
NPS_BY_TIER = (
    np.array([0.01, 0.01, 0.01, 0.01, 0.02, 0.03, 0.04, 0.07, 0.15, 0.23, 0.42]),
    np.array([0.02, 0.01, 0.02, 0.03, 0.04, 0.06, 0.07, 0.12, 0.20, 0.20, 0.23]),
    np.array([0.12, 0.06, 0.06, 0.07, 0.07, 0.10, 0.10, 0.10, 0.10, 0.10, 0.12]),
)
CSAT_BY_TIER = (
    np.array([0.02, 0.03, 0.07, 0.30, 0.58]),
    np.array([0.06, 0.08, 0.14, 0.35, 0.37]),
    np.array([0.25, 0.20, 0.20, 0.20, 0.15]),
)
# how identifiable customers are: these shares set what the identity rule (spec section 3)
# can and cannot recover (see identity_ceiling and docs/demo-world.md)
#: customers with a CRM (HubSpot) row linking their e-mail, phone and CRM id
CRM_SHARE = 0.85
#: contacts on the customer's habitual channel: CRM customers / people not in the CRM
STICKY_CRM, STICKY_NON_CRM = 0.65, 0.97
#: Intercom knows the e-mail of a customer who has one (a "user", not a "lead")
CHAT_EMAIL_SHARE = 0.99
#: Intercom holds a phone for the customer; the bot asks a visitor without e-mail for one
CHAT_PHONE_SHARE, CHAT_ASKS_PHONE = 0.30, 0.98
#: the Zendesk requester profile holds the phone; a ticket's form field asks for it
ZENDESK_PHONE_SHARE, TICKET_PHONE_FIELD = 0.75, 0.10
#: the Messenger bot gets the e-mail in the first conversation / in any later one
MESSENGER_GIVES_EMAIL, MESSENGER_EMAIL_LATER = 0.99, 0.50
#: expected contacts per customer per 30 days, measured (used only to size by contacts)
CONTACTS_PER_CUSTOMER_30D = 2.41


def _streams(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(seed).spawn(n)]


def _lognormal(
    rng: np.random.Generator, n: int, median: float, sigma: float, lo: float, hi: float
) -> np.ndarray:
    return np.clip(median * np.exp(sigma * rng.standard_normal(n)), lo, hi).round().astype(np.int64)


def _unique_ints(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n distinct random integers in [lo, hi), in random order."""
    return lo + rng.choice(hi - lo, size=n, replace=False).astype(np.int64)


_HEXCHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex(values: np.ndarray, width: int = 16) -> pa.Array:
    """Lower-case fixed-width hex strings of non-negative int64 values (vectorized)."""
    v = values.astype(np.uint64)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    nibbles = (v[:, None] >> shifts[None, :]) & np.uint64(15)
    chars = _HEXCHARS[nibbles.astype(np.intp)]
    return pa.array(chars.view(f"S{width}").ravel()).cast(pa.string())


def _digits(values: np.ndarray, width: int | None = None) -> pa.Array:
    s = pc.cast(pa.array(values, pa.int64()), pa.string())
    return pc.utf8_lpad(s, width, "0") if width else s


def _cat(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _pick(strings: Sequence[str], idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(list(strings), pa.string()), pa.array(idx, pa.int64()))


def _mask_null(values: pa.Array, keep: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(keep), values, pa.scalar(None, values.type))


def _opt_int(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(values, pa.int64(), mask=~valid)


def _segment_ids(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, position, owner's first row) for rows laid out contiguously by owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - first[owner], first


def _local_hour(t: np.ndarray) -> np.ndarray:
    return ((t + SP_OFFSET) // HOUR) % 24


def _scatter(values: pa.Array, rows: np.ndarray, n: int) -> pa.Array:
    """An array of length n holding ``values`` at ``rows`` and nulls elsewhere."""
    where = np.full(n, -1, dtype=np.int64)
    where[rows] = np.arange(rows.size)
    return pc.take(values, pa.array(where, mask=where < 0))


def _format_phones(e164: pa.Array, which: np.ndarray) -> pa.Array:
    """Render E.164 Brazilian numbers in the assorted ways people and systems write them:
    ``which`` picks per row one of "+55 11 98765-4321", "(11) 98765-4321", "11987654321",
    "011 98765 4321", "+5511987654321"."""
    ddd = pc.utf8_slice_codeunits(e164, 3, 5)
    local = pc.utf8_slice_codeunits(e164, 5)
    head = pc.utf8_slice_codeunits(local, 0, -4)
    tail = pc.utf8_slice_codeunits(local, -4)
    formats = [
        _cat("+55 ", ddd, " ", head, "-", tail),
        _cat("(", ddd, ") ", head, "-", tail),
        _cat(ddd, local),
        _cat("0", ddd, " ", head, " ", tail),
        e164,
    ]
    return pc.choose(pa.array(which.astype(np.int8)), *formats)


# --------------------------------------------------------------------------------------------
# the world
# --------------------------------------------------------------------------------------------


def _size(customers: int | None, contacts: int | None, days: int) -> int:
    if customers is not None and contacts is not None:
        raise ValueError("give customers or contacts, not both")
    if customers is None and contacts is None:
        customers = 1000
    if customers is None:
        assert contacts is not None
        # requests per customer are 1 + Poisson(~0.42 per 30 days)
        per_customer = CONTACTS_PER_CUSTOMER_30D * (1 + 0.42 * days / 30) / 1.42
        customers = round(contacts / per_customer)
    if customers < 1:
        raise ValueError("a world needs at least one customer")
    return int(customers)


def generate_world(
    seed: int = 42,
    customers: int | None = None,
    contacts: int | None = None,
    days: int = WORLD_DAYS,
    end: int = END_ANCHOR,
) -> World:
    """Generate a deterministic world of ``days`` days ending (exclusive) at ``end``.

    Exactly one of ``customers`` (true customers) or ``contacts`` (approximate number of
    contacts; customers are derived from it) sets the size; neither means 1000 customers.
    """
    if days < 1:
        raise ValueError("days must be >= 1")
    n = _size(customers, contacts, days)
    start = end - days * DAY
    r_cust, r_req, r_con, r_srv, r_ids = _streams(seed, 5)

    cust = _customers(r_cust, n, start, end)
    req, con = _requests_and_contacts(r_req, r_con, cust, n, start, end, days)
    _customer_channel_ids(r_ids, cust, con)
    contacts_tbl, requests_tbl = _contacts_table(r_ids, cust, req, con, start, end)
    surveys_tbl = _surveys(r_srv, con, end)
    customers_tbl = _customers_table(cust)
    for table, schema in (
        (customers_tbl, CUSTOMERS),
        (requests_tbl, REQUESTS),
        (contacts_tbl, CONTACTS),
        (surveys_tbl, SURVEYS),
    ):
        assert table.schema.equals(schema), (table.schema, schema)
    return World(
        seed=seed,
        start=start,
        end=end,
        customers=customers_tbl,
        requests=requests_tbl,
        contacts=contacts_tbl,
        surveys=surveys_tbl,
        params={
            "generator_version": GENERATOR_VERSION,
            "customers": n,
            "contacts_requested": contacts,
            "days": days,
        },
    )


def _customers(rng: np.random.Generator, n: int, start: int, end: int) -> dict:
    idx = np.arange(n)
    first = rng.integers(0, len(_FIRST), n)
    last = rng.integers(0, len(_LAST), n)
    last2 = np.where(rng.random(n) < 0.5, rng.integers(0, len(_LAST), n), -1)

    # groups sharing a phone: small families (landline) and company switchboards
    perm = rng.permutation(n)
    group = np.full(n, -1, dtype=np.int64)
    kind = np.zeros(n, dtype=np.int8)  # 0 none, 1 family, 2 switchboard
    n_switch = round(n * 0.015 / 27.5) if n >= 200 else 0
    if n >= 60 and n_switch == 0:
        n_switch = 1
    sizes_s = rng.integers(15, 41, n_switch)
    n_fam = round(n * 0.006 / 2.4)
    sizes_f = rng.choice([2, 3], size=n_fam, p=[0.6, 0.4])
    sizes = np.concatenate([sizes_s, sizes_f]).astype(np.int64)
    kinds = np.concatenate([np.full(n_switch, 2), np.full(n_fam, 1)]).astype(np.int8)
    fits = np.cumsum(sizes) <= n
    sizes, kinds = sizes[fits], kinds[fits]
    g_owner, _, g_first = _segment_ids(sizes)
    members = perm[: g_owner.size]
    group[members] = g_owner
    kind[members] = kinds[g_owner]
    # family members share a surname; the head of the group is its first member
    fam_rows = members[kinds[g_owner] == 1]
    last[fam_rows] = last[members[g_first[g_owner]]][kinds[g_owner] == 1]
    last2[fam_rows] = -1

    ascii_first = [s.translate(_ASCII).lower() for s in _FIRST]
    ascii_last = [s.translate(_ASCII).lower() for s in _LAST]
    name = _cat(_pick(_FIRST, first), " ", _pick(_LAST, last))
    has_last2 = last2 >= 0
    name = pc.if_else(
        pa.array(has_last2),
        _cat(
            _pick(_FIRST, first), " ", _pick(_LAST, np.maximum(last2, 0)), " ", _pick(_LAST, last)
        ),
        name,
    )

    # e-mail: unique thanks to a per-customer number drawn without replacement
    width = max(4, len(str(n * 10)))
    suffix = _digits(_unique_ints(rng, n, 10 ** (width - 1), 10**width))
    pattern = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    f_a, l_a = _pick(ascii_first, first), _pick(ascii_last, last)
    local = pc.choose(
        pa.array(pattern.astype(np.int8)),
        _cat(f_a, ".", l_a, suffix),
        _cat(f_a, l_a, suffix),
        _cat(f_a, "_", suffix),
    )
    dom_names = list(_EMAIL_DOMAINS)
    dom = rng.choice(len(dom_names), size=n, p=np.array(list(_EMAIL_DOMAINS.values())))
    domain = _pick(dom_names, dom)
    gnum = np.maximum(group, 0)
    company = _cat(
        _pick(_COMPANY_WORDS, gnum % len(_COMPANY_WORDS)),
        _digits(gnum // len(_COMPANY_WORDS)),
        ".com.br",
    )
    domain = pc.if_else(pa.array(kind == 2), company, domain)
    email_share = np.where(kind == 2, 0.98, 0.88)
    has_email = rng.random(n) < email_share
    email = _mask_null(_cat(local, "@", domain), has_email)

    # phones: own mobile (unique 8-digit tail), shared landline per group
    ddd_names = list(_DDD)
    ddd_p = np.array(list(_DDD.values()))
    ddd = rng.choice(len(ddd_names), size=n, p=ddd_p / ddd_p.sum())
    mobile_tail = _unique_ints(rng, n, 60_000_000, 100_000_000)
    own_share = np.select([kind == 1, kind == 2], [0.65, 0.40], 0.90)
    has_own = rng.random(n) < own_share
    own = _mask_null(_cat("+55", _pick(ddd_names, ddd), "9", _digits(mobile_tail)), has_own)
    n_groups = sizes.size
    g_ddd = rng.choice(len(ddd_names), size=n_groups, p=ddd_p / ddd_p.sum())
    g_tail = _unique_ints(rng, n_groups, 20_000_000, 60_000_000)
    g_phone = _cat("+55", _pick(ddd_names, g_ddd), _digits(g_tail))
    in_group = group >= 0
    shared = _mask_null(pc.take(g_phone, pa.array(gnum)) if n_groups else own, in_group)
    shared_kind = _mask_null(_pick(["", "family", "switchboard"], kind), in_group)
    # nobody without any identifier: a customer with neither phone nor e-mail gets an e-mail
    lonely = ~has_email & ~has_own & ~in_group
    if lonely.any():
        has_email = has_email | lonely
        email = _mask_null(_cat(local, "@", domain), has_email)

    # CRM: ~85% of customers; HubSpot ids increase with creation time
    has_crm = rng.random(n) < CRM_SHARE
    new_in_window = rng.random(n) < 0.12
    crm_created = np.where(
        new_in_window,
        start + (rng.random(n) * (end - start - HOUR)).astype(np.int64),
        start - rng.integers(30 * DAY, 6 * 365 * DAY, n),
    )
    late_update = rng.random(n) < 0.20
    upd_lo = np.maximum(crm_created, start)
    crm_updated = np.where(
        late_update,
        upd_lo + (rng.random(n) * (end - upd_lo - 1)).astype(np.int64),
        crm_created + (rng.random(n) * np.maximum(start - crm_created, 0)).astype(np.int64),
    )
    crm_updated = np.minimum(np.maximum(crm_updated, crm_created), end - 1)
    order = np.argsort(crm_created, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    crm_num = 10_001 + rank * 3 + rng.integers(0, 3, n)
    crm_id = _mask_null(_digits(crm_num), has_crm)
    # the CRM row's phone: a company's contacts are filed under the switchboard; otherwise the
    # customer's own phone, else the family landline
    crm_phone = pc.if_else(pa.array(kind == 2), shared, pc.coalesce(own, shared))
    crm_phone = _mask_null(crm_phone, has_crm)

    primary = rng.choice(5, size=n, p=CHANNEL_MIX)
    return {
        "n": n,
        "idx": idx,
        "name": name,
        "email": email,
        "has_email": has_email,
        "own": own,
        "has_own": has_own,
        "shared": shared,
        "kind": kind,
        "shared_kind": shared_kind,
        "has_shared": in_group,
        "crm_id": crm_id,
        "has_crm": has_crm,
        "crm_created": crm_created,
        "crm_updated": crm_updated,
        "crm_phone": crm_phone,
        "fav_topic": rng.choice(len(TOPIC_NAMES), size=n, p=TOPIC_WEIGHTS),
        # company staff mostly write e-mails from their corporate address
        "primary": np.where(
            (kind == 2) & has_email & (rng.random(n) < 0.6),
            EMAIL,
            np.where(
                (primary == MESSENGER) & ~has_email & (has_own | in_group),
                VOICE,
                primary,
            ),
        ),
    }


def _arrival_times(rng: np.random.Generator, k: int, start: int, end: int) -> np.ndarray:
    """k instants in [start, end) following the local hour-of-day and weekday profile."""
    hours = np.arange(start // HOUR, -(-end // HOUR), dtype=np.int64) * HOUR
    local = hours + SP_OFFSET
    dow = ((local // DAY) + 3) % 7  # 1970-01-01 was a Thursday
    w = HOUR_PROFILE[(local // HOUR) % 24] * DOW_PROFILE[dow]
    b = rng.choice(hours.size, size=k, p=w / w.sum())
    t = hours[b] + rng.integers(0, HOUR, k)
    # the first and last hour bins may stick out of the world: fold them back inside
    return np.clip(t, start, end - 1)


def _requests_and_contacts(
    rr: np.random.Generator,
    rc: np.random.Generator,
    cust: dict,
    n: int,
    start: int,
    end: int,
    days: int,
) -> tuple[dict, dict]:
    lam = rr.gamma(EXTRA_REQUESTS_SHAPE, EXTRA_REQUESTS_SCALE, n) * days / 30
    # people not in the CRM (prospects, guest buyers) come back less often
    lam = np.where(cust["has_crm"], lam, lam * 0.5)
    n_req = 1 + rr.poisson(lam)
    r_cust = np.repeat(np.arange(n), n_req)
    nr = r_cust.size
    opened = _arrival_times(rr, nr, start, end)
    k = 1 + rr.choice(CONTACTS_PER_REQUEST.size, size=nr, p=CONTACTS_PER_REQUEST)
    c_req, pos, r_first = _segment_ids(k)
    nc = c_req.size
    c_cust = r_cust[c_req]

    # channel: the customer's habitual channel half of the time, else the overall mix
    primary = cust["primary"][c_cust]
    sticky = np.where(cust["has_crm"][c_cust], STICKY_CRM, STICKY_NON_CRM)
    ch = np.where(rc.random(nc) < sticky, primary, rc.choice(5, size=nc, p=CHANNEL_MIX))
    has_phone = (cust["has_own"] | cust["has_shared"])[c_cust]
    has_email = cust["has_email"][c_cust]
    ch = np.where((ch == EMAIL) & ~has_email, CHAT, ch)
    # customers without e-mail are the less digital ones: Messenger is rare among them
    offline = (ch == MESSENGER) & ~has_email & has_phone & (rc.random(nc) < 0.92)
    ch = np.where(offline, np.where(rc.random(nc) < 0.7, VOICE, SMS), ch)
    ch = np.where(
        ((ch == VOICE) | (ch == SMS)) & ~has_phone, np.where(pos % 2, CHAT, MESSENGER), ch
    )
    # a landline cannot text: customers with only a shared landline call instead
    ch = np.where((ch == SMS) & ~cust["has_own"][c_cust], VOICE, ch)

    first_ch = ch[r_first]
    has_protocol = rr.random(nr) < PROTOCOL_BY_CHANNEL[first_ch]
    direction_out = (pos > 0) & (rc.random(nc) < OUTBOUND_LATER[ch])

    # gaps between consecutive contacts of a request
    long_gap = (pos > 0) & has_protocol[c_req] & (rc.random(nc) < LONG_GAP_SHARE)
    quick = rc.random(nc) < 0.35
    gap = np.where(
        quick,
        _lognormal(rc, nc, 40 * 60, 0.8, 3 * 60, 6 * HOUR),
        _lognormal(rc, nc, 20 * HOUR, 0.7, HOUR, 70 * HOUR),
    )
    gap = np.where(long_gap, rc.integers(4 * DAY, 10 * DAY, nc), gap)
    night_shift = rc.random(nc) < 0.8
    morning = rc.integers(7 * HOUR, 10 * HOUR, nc)
    started = np.zeros(nc, dtype=np.int64)
    started[r_first] = opened
    for j in range(1, int(k.max())):
        rows = r_first[k > j] + j
        t = started[rows - 1] + gap[rows]
        # people rarely write or call between midnight and 7h: move to the next morning
        local = t + SP_OFFSET
        moved = local - local % DAY + morning[rows] - SP_OFFSET
        shift = (_local_hour(t) < 7) & night_shift[rows]
        shift &= long_gap[rows] | (moved - started[rows - 1] <= 70 * HOUR)
        started[rows] = np.where(shift, moved, t)
    quoted = has_protocol[c_req] & ((pos == 0) | long_gap | (rc.random(nc) < QUOTE_SHORT_SHARE))

    kept = started < end
    # contacts of a request are contiguous and in time order here, and only a tail is cut off
    kept_k = np.add.reduceat(kept.astype(np.int64), r_first)
    last_start = started[r_first + kept_k - 1]

    # topics: a customer often comes back about the same thing; two requests of one customer on
    # one topic must be more than 72 h apart (else the pipeline would rightly join them)
    topic = np.where(
        rr.random(nr) < 0.30,
        cust["fav_topic"][r_cust],
        rr.choice(len(TOPIC_NAMES), size=nr, p=TOPIC_WEIGHTS),
    )
    margin = REQUEST_WINDOW + 6 * HOUR
    for _ in range(200):
        order = np.lexsort((np.arange(nr), opened, topic, r_cust))
        c, t, o, lst = r_cust[order], topic[order], opened[order], last_start[order]
        bad = (c[1:] == c[:-1]) & (t[1:] == t[:-1]) & (o[1:] <= lst[:-1] + margin)
        if not bad.any():
            break
        redo = order[1:][bad]
        topic[redo] = rr.choice(len(TOPIC_NAMES), size=redo.size, p=TOPIC_WEIGHTS)
    else:  # pragma: no cover - would need a customer with >12 overlapping requests
        raise RuntimeError("could not separate same-topic requests")

    req = {
        "cust": r_cust,
        "opened": opened,
        "k": k,
        "first": r_first,
        "topic": topic,
        "has_protocol": has_protocol,
        "kept_k": kept_k,
    }
    # contacts in their final order: (started_at, generation order)
    rows = np.flatnonzero(kept)
    rows = rows[np.argsort(started[rows], kind="stable")]
    con = {
        "req": c_req[rows],
        "pos": pos[rows],
        "cust": c_cust[rows],
        "ch": ch[rows],
        "out": direction_out[rows],
        "started": started[rows],
        "quoted": quoted[rows],
        "long_gap": long_gap[rows],
        "topic": topic[c_req[rows]],
    }
    return req, con


def _customer_channel_ids(rng: np.random.Generator, cust: dict, con: dict) -> None:
    """Messenger PSIDs and Intercom contact ids exist for the customers who used them."""
    n = cust["n"]
    used = np.zeros((5, n), dtype=bool)
    used[con["ch"], con["cust"]] = True
    psid = _digits(_unique_ints(rng, n, 10**15, 10**16))
    cust["psid"] = _mask_null(psid, used[MESSENGER])
    ts = rng.integers(0x60000000, 0x68000000, n)
    chat_id = _cat(_hex(ts, 8), _hex(_unique_ints(rng, n, 0, 2**62), 16))
    cust["chat_id"] = _mask_null(chat_id, used[CHAT])
    # profile fields every record of the customer shows: the Intercom contact's e-mail (a
    # "user", not a "lead") and phone, the Zendesk requester's phone; and whether the customer
    # answers the Messenger bot's "what is your e-mail?" in their first conversation
    cust["chat_has_email"] = rng.random(n) < CHAT_EMAIL_SHARE
    cust["chat_has_phone"] = rng.random(n) < CHAT_PHONE_SHARE
    cust["zendesk_has_phone"] = rng.random(n) < ZENDESK_PHONE_SHARE
    cust["messenger_gives_email"] = rng.random(n) < MESSENGER_GIVES_EMAIL


def _contacts_table(
    rng: np.random.Generator, cust: dict, req: dict, con: dict, start: int, end: int
) -> tuple[pa.Table, pa.Table]:
    nc = con["req"].size
    ch, out, started = con["ch"], con["out"], con["started"]
    inbound = ~out
    is_ch = [ch == c for c in range(5)]

    # who handles it; chats: 40% bot-only, and half of the agent chats met the bot first
    bot = is_ch[CHAT] & inbound & (rng.random(nc) < 0.40)
    bot_first = is_ch[CHAT] & inbound & ~bot & (rng.random(nc) < 0.50)

    never = np.iinfo(np.int64).max
    frt = np.full(nc, never)  # first response, seconds after start
    agent_frt = np.full(nc, never)
    queue = np.zeros(nc, dtype=np.int64)
    has_queue = np.zeros(nc, dtype=bool)
    dur = np.zeros(nc, dtype=np.int64)  # from start to end
    handle = np.zeros(nc, dtype=np.int64)
    has_handle = np.zeros(nc, dtype=bool)
    n_msg = np.zeros(nc, dtype=np.int64)
    unanswered = np.zeros(nc, dtype=bool)

    def ln(median: float, sigma: float, lo: float, hi: float) -> np.ndarray:
        return _lognormal(rng, nc, median, sigma, lo, hi)

    # voice: IVR, queue, agent; 6% of inbound calls abandoned
    m = is_ch[VOICE] & inbound
    ivr = ln(35, 0.4, 10, 180)
    q = ln(70, 0.75, 5, 1500)
    aband = m & (rng.random(nc) < 0.06)
    in_ivr = aband & (rng.random(nc) < 0.25)  # hung up before reaching the queue
    talk = ln(300, 0.5, 40, 3600)
    acw = ln(30, 0.5, 5, 300)
    answered = m & ~aband
    frt = np.where(answered, ivr + q, frt)
    agent_frt = np.where(answered, ivr + q, agent_frt)
    queue = np.where(m & ~in_ivr, q, queue)
    has_queue |= m & ~in_ivr
    dur = np.where(answered, ivr + q + talk, dur)
    dur = np.where(aband, ivr + np.where(in_ivr, 0, q), dur)
    handle = np.where(answered, talk + acw, handle)
    has_handle |= answered
    unanswered |= aband
    m = is_ch[VOICE] & out  # callbacks: the agent is on the line from the start
    ring = ln(15, 0.4, 3, 60)
    talk_out = ln(220, 0.5, 30, 2400)
    frt = np.where(m, 0, frt)
    agent_frt = np.where(m, 0, agent_frt)
    dur = np.where(m, ring + talk_out, dur)
    handle = np.where(m, talk_out + acw, handle)
    has_handle |= m

    # chat (Intercom): bot replies in ~2 s; agents in 1-3 min
    m = is_ch[CHAT]
    bot_reply = rng.integers(1, 4, nc)
    agent_wait = ln(95, 0.5, 15, 1800)
    bot_phase = ln(70, 0.5, 10, 600)
    chat_aband = m & inbound & ~bot & ~bot_first & (rng.random(nc) < 0.04)
    agent_talk = ln(600, 0.6, 60, 7200)
    bot_talk = ln(180, 0.6, 20, 1800)
    a_frt = np.where(bot_first, bot_phase + agent_wait, agent_wait)
    a_frt = np.where(out, 0, a_frt)
    chat_agent = m & ~bot & ~chat_aband
    frt = np.where(chat_agent, np.where(bot_first, bot_reply, a_frt), frt)
    agent_frt = np.where(chat_agent, a_frt, agent_frt)
    frt = np.where(m & bot, bot_reply, frt)
    dur = np.where(chat_agent, a_frt + agent_talk, dur)
    dur = np.where(m & bot, bot_talk, dur)
    dur = np.where(chat_aband, ln(180, 0.6, 30, 1800), dur)
    handle = np.where(chat_agent, agent_talk, handle)
    handle = np.where(m & bot, bot_talk, handle)
    has_handle |= chat_agent | (m & bot)
    n_msg = np.where(chat_agent, ln(14, 0.5, 4, 80), n_msg)
    n_msg = np.where(m & bot, ln(7, 0.4, 2, 30), n_msg)
    n_msg = np.where(chat_aband, rng.integers(1, 4, nc), n_msg)
    unanswered |= chat_aband

    # e-mail (Zendesk): first reply in hours, solved within a day or two
    m = is_ch[EMAIL]
    mail_aband = m & inbound & (rng.random(nc) < 0.01)
    e_frt = np.where(out, 0, ln(4 * HOUR, 1.0, 5 * 60, 72 * HOUR))
    e_answered = m & ~mail_aband
    frt = np.where(e_answered, e_frt, frt)
    agent_frt = np.where(e_answered, e_frt, agent_frt)
    dur = np.where(e_answered, e_frt + ln(20 * HOUR, 1.0, 10 * 60, 10 * DAY), dur)
    dur = np.where(mail_aband, ln(DAY, 0.5, HOUR, 5 * DAY), dur)
    handle = np.where(e_answered, ln(360, 0.6, 60, 3600), handle)
    has_handle |= e_answered
    unanswered |= mail_aband

    # messenger: replies in minutes to hours; the page reports no handle time
    m = is_ch[MESSENGER]
    msg_aband = m & (rng.random(nc) < 0.03)
    m_frt = ln(25 * 60, 1.3, 30, 48 * HOUR)
    m_ans = m & ~msg_aband
    frt = np.where(m_ans, m_frt, frt)
    agent_frt = np.where(m_ans, m_frt, agent_frt)
    dur = np.where(m_ans, m_frt + ln(40 * 60, 1.0, 60, 3 * DAY), dur)
    dur = np.where(msg_aband, ln(120, 0.8, 0, 3600), dur)
    n_msg = np.where(m_ans, ln(7, 0.5, 2, 60), n_msg)
    n_msg = np.where(msg_aband, rng.integers(1, 4, nc), n_msg)
    unanswered |= msg_aband

    # sms: inbound answered in minutes; outbound notifications, a fifth get a reply
    m = is_ch[SMS] & inbound
    sms_aband = m & (rng.random(nc) < 0.04)
    s_frt = ln(6 * 60, 1.0, 10, 24 * HOUR)
    s_ans = m & ~sms_aband
    frt = np.where(s_ans, s_frt, frt)
    agent_frt = np.where(s_ans, s_frt, agent_frt)
    dur = np.where(s_ans, s_frt + ln(15 * 60, 1.0, 10, 2 * DAY), dur)
    n_msg = np.where(s_ans, ln(4, 0.4, 2, 12), n_msg)
    n_msg = np.where(sms_aband, rng.integers(1, 3, nc), n_msg)
    unanswered |= sms_aband
    m = is_ch[SMS] & out
    replied = m & (rng.random(nc) < 0.20)
    frt = np.where(m, 0, frt)
    agent_frt = np.where(m, 0, agent_frt)
    dur = np.where(replied, ln(20 * 60, 1.0, 10, DAY), np.where(m, 0, dur))
    n_msg = np.where(m, np.where(replied, rng.integers(2, 4, nc), 1), n_msg)

    # what has happened by the end of the world
    fr_at = started + np.where(frt == never, 0, frt)
    fr_valid = (frt != never) & (fr_at < end)
    ag_at = started + np.where(agent_frt == never, 0, agent_frt)
    ag_valid = (agent_frt != never) & (ag_at < end)
    ended = started + dur
    closed = ended < end
    abandoned = unanswered & closed & inbound
    has_queue &= fr_valid | abandoned
    has_handle &= closed
    has_nmsg = is_ch[SMS] | is_ch[MESSENGER] | is_ch[CHAT]

    # resolution: the last contact of a request resolves it (or not)
    nreq = req["cust"].size
    last_pos = req["kept_k"] - 1
    is_last = con["pos"] == last_pos[con["req"]]
    single = last_pos[con["req"]] == 0
    p_res = np.where(single, 0.72, 0.82)
    p_res = np.where(bot, 0.55, p_res)
    resolved = is_last & closed & ~unanswered & (rng.random(nc) < p_res)

    # versions
    last_event = np.where(closed, ended, np.where(fr_valid, fr_at, started))
    last_event = np.minimum(last_event, end - 1)
    first_version = np.where(is_ch[VOICE] & closed, ended, started)
    late = is_ch[VOICE] & closed & (rng.random(nc) < 0.05)
    late_at = np.minimum(ended + rng.integers(300, 20 * HOUR, nc), started + 24 * HOUR - 1)
    late &= (late_at > ended) & (late_at < end)
    updated = np.where(late, late_at, last_event)

    # source topics: the channel's own code for the request's topic, a few unmapped
    src_topic = _source_topics(rng, ch, con["topic"])

    # identifiers as the channel sees them
    c = con["cust"]
    cust_idx = pa.array(c)
    own = pc.take(cust["own"], cust_idx)
    shared = pc.take(cust["shared"], cust_idx)
    kind = cust["kind"][c]
    use_shared = ((kind == 1) & (rng.random(nc) < 0.30)) | ((kind == 2) & (rng.random(nc) < 0.30))
    use_shared &= ~is_ch[SMS]
    line = pc.coalesce(pc.if_else(pa.array(use_shared), shared, own), own, shared)
    has_crm = cust["has_crm"][c]
    # the IVR authenticates 60% of callers; the business line asks every caller for the
    # company's customer code (90%); outbound calls are dialled from the CRM record
    p_auth = np.where(out, 0.9, np.where(kind == 2, 0.9, 0.6))
    crm_auth = is_ch[VOICE] & has_crm & (rng.random(nc) < p_auth)
    withheld = is_ch[VOICE] & inbound & crm_auth & (rng.random(nc) < 0.03)
    phone_show = (is_ch[VOICE] & ~withheld) | is_ch[SMS]
    chat_email = cust["chat_has_email"][c] & cust["has_email"][c]
    phone_show |= is_ch[EMAIL] & (
        cust["zendesk_has_phone"][c] | (rng.random(nc) < TICKET_PHONE_FIELD)
    )
    # Intercom's bot asks a visitor it cannot identify by e-mail for a phone number
    chat_phone = cust["chat_has_phone"][c] | (~chat_email & (rng.random(nc) < CHAT_ASKS_PHONE))
    phone_show |= is_ch[CHAT] & chat_phone
    which = np.zeros(nc, dtype=np.int64)
    for channel, probs in PHONE_FORMATS.items():
        sel = np.flatnonzero(is_ch[channel])
        which[sel] = rng.choice(5, size=sel.size, p=np.asarray(probs) / np.sum(probs))
    rows = np.flatnonzero(phone_show)
    phone_raw = _scatter(_format_phones(pc.take(line, pa.array(rows)), which[rows]), rows, nc)
    email = pc.take(cust["email"], cust_idx)
    show_email = is_ch[EMAIL]
    show_email |= is_ch[CHAT] & chat_email
    m_rows = np.flatnonzero(is_ch[MESSENGER])
    m_rows = m_rows[np.lexsort((started[m_rows], c[m_rows]))]
    first_m = np.zeros(nc, dtype=bool)
    first_m[m_rows[np.r_[True, c[m_rows][1:] != c[m_rows][:-1]]] if m_rows.size else []] = True
    asked = first_m & cust["messenger_gives_email"][c]
    show_email |= is_ch[MESSENGER] & (asked | (rng.random(nc) < MESSENGER_EMAIL_LATER))
    variant = rng.choice(4, size=nc, p=[0.70, 0.15, 0.10, 0.05])
    email_raw = pc.choose(
        pa.array(variant.astype(np.int8)),
        email,
        pc.utf8_capitalize(email),
        pc.utf8_upper(email),
        _cat(" ", email, " "),
    )
    email_raw = _mask_null(email_raw, show_email & pc.is_valid(email).to_numpy(False))
    psid = _mask_null(pc.take(cust["psid"], cust_idx), is_ch[MESSENGER])
    chat_id = _mask_null(pc.take(cust["chat_id"], cust_idx), is_ch[CHAT])
    crm = _mask_null(pc.take(cust["crm_id"], cust_idx), crm_auth)

    # protocol numbers: local date of the request's opening + a unique sequence
    nr = nreq
    opened_local = (req["opened"] + SP_OFFSET).astype("datetime64[s]").astype("datetime64[D]")
    ymd = pc.replace_substring(pa.array(np.datetime_as_string(opened_local)), "-", "")
    width = max(6, len(str(nr)))
    proto_all = _cat(ymd, _digits(_unique_ints(rng, nr, 0, 10**width), width))
    protocol = _mask_null(proto_all, req["has_protocol"])
    quoted = _mask_null(pc.take(proto_all, pa.array(con["req"])), con["quoted"])

    # final order: contacts are already by started_at; requests by opened_at
    r_order = np.lexsort((np.arange(nr), req["opened"]))
    r_new = np.empty(nr, dtype=np.int64)
    r_new[r_order] = np.arange(nr)

    source_id = _source_ids(rng, ch)
    req_resolved = np.bincount(con["req"], weights=resolved, minlength=nr) > 0
    direction = _pick(["inbound", "outbound"], out.astype(np.int64))
    handled = _pick(["agent", "bot"], bot.astype(np.int64))

    cols = {
        "contact_idx": pa.array(np.arange(nc), pa.int64()),
        "source_id": source_id,
        "channel": _pick(CHANNEL_ORDER, ch),
        "customer_idx": pa.array(c, pa.int64()),
        "request_idx": pa.array(r_new[con["req"]], pa.int64()),
        "direction": direction,
        "handled_by": handled,
        "started_at": pa.array(started, pa.int64()),
        "queue_seconds": _opt_int(queue, has_queue),
        "first_response_at": _opt_int(fr_at, fr_valid),
        "first_agent_response_at": _opt_int(ag_at, ag_valid),
        "ended_at": _opt_int(ended, closed),
        "handle_seconds": _opt_int(handle, has_handle),
        "abandoned": pa.array(abandoned),
        "resolved": pa.array(resolved),
        "source_topic": src_topic,
        "quoted_protocol": quoted,
        "phone_raw": phone_raw,
        "email_raw": email_raw,
        "messenger_psid": psid,
        "chat_contact_id": chat_id,
        "crm_id": crm,
        "n_messages": _opt_int(n_msg, has_nmsg),
        "updated_at": pa.array(updated, pa.int64()),
        "first_version_at": pa.array(first_version, pa.int64()),
    }
    contacts = pa.Table.from_arrays(list(cols.values()), schema=CONTACTS)

    requests = pa.Table.from_arrays(
        [
            pa.array(np.arange(nr), pa.int64()),
            pa.array(req["cust"][r_order], pa.int64()),
            _pick(TOPIC_NAMES, req["topic"][r_order]),
            pc.take(protocol, pa.array(r_order)),
            pa.array(req["opened"][r_order], pa.int64()),
            pa.array(req_resolved[r_order]),
        ],
        schema=REQUESTS,
    )
    # what the survey step needs
    con["final"] = {
        "closed": closed,
        "ended": ended,
        "abandoned": abandoned,
        "resolved": resolved,
        "req_resolved": req_resolved[con["req"]],
        "cust": c,
    }
    return contacts, requests


def _source_topics(rng: np.random.Generator, ch: np.ndarray, topic: np.ndarray) -> pa.Array:
    """Each contact's code in its channel's vocabulary (many codes to one topic)."""
    codes: list[str] = []
    offset = np.zeros((5, len(TOPIC_NAMES)), dtype=np.int64)
    count = np.zeros((5, len(TOPIC_NAMES)), dtype=np.int64)
    for c, channel in enumerate(CHANNEL_ORDER):
        for t, name in enumerate(TOPIC_NAMES):
            offset[c, t] = len(codes)
            count[c, t] = len(SOURCE_TOPICS[channel][name])
            codes.extend(SOURCE_TOPICS[channel][name])
    u_off = np.zeros(5, dtype=np.int64)
    u_cnt = np.zeros(5, dtype=np.int64)
    for c, channel in enumerate(CHANNEL_ORDER):
        u_off[c] = len(codes)
        u_cnt[c] = len(UNMAPPED_CODES[channel])
        codes.extend(UNMAPPED_CODES[channel])
    u = rng.random(ch.size)
    pick = offset[ch, topic] + (u * count[ch, topic]).astype(np.int64)
    unmapped = rng.random(ch.size) < UNMAPPED_SHARE
    pick = np.where(unmapped, u_off[ch] + (u * u_cnt[ch]).astype(np.int64), pick)
    return _pick(codes, pick)


def _source_ids(rng: np.random.Generator, ch_f: np.ndarray) -> pa.Array:
    """Vendor ids, unique within channel; sequential vendors' ids grow with time."""
    nc = ch_f.size
    out = pa.nulls(nc, pa.string())
    for c in range(5):
        sel = np.flatnonzero(ch_f == c)
        k = sel.size
        if not k:
            continue
        if c == VOICE:  # Amazon Connect ContactId: a uuid
            hi = _hex(_unique_ints(rng, k, 0, 2**62), 16)
            lo = _hex(rng.integers(0, 2**62, k), 16)
            ids = _cat(
                pc.utf8_slice_codeunits(hi, 0, 8), "-", pc.utf8_slice_codeunits(hi, 8, 12),
                "-4", pc.utf8_slice_codeunits(hi, 13, 16), "-a", pc.utf8_slice_codeunits(lo, 1, 4),
                "-", pc.utf8_slice_codeunits(lo, 4, 16),
            )  # fmt: skip
        elif c == SMS:  # Twilio message sid
            ids = _cat(
                "SM", _hex(_unique_ints(rng, k, 0, 2**62), 16), _hex(rng.integers(0, 2**62, k), 16)
            )
        elif c == EMAIL:  # Zendesk ticket ids grow with creation (other tickets in between)
            ids = _digits(180_000 + np.cumsum(rng.integers(1, 4, k)))
        elif c == CHAT:  # Intercom conversation ids grow too
            ids = _digits(215_470_000_000_000 + np.cumsum(rng.integers(1, 40_000, k)))
        else:  # Messenger thread ids
            ids = _cat("t_", _digits(_unique_ints(rng, k, 10**14, 10**15)))
        out = pc.coalesce(out, _scatter(ids, sel, nc))
    return out


def _surveys(rng: np.random.Generator, con: dict, end: int) -> pa.Table:
    f = con["final"]
    nc = f["closed"].size
    eligible = f["closed"] & ~f["abandoned"]
    chosen = eligible & (rng.random(nc) < 0.20)
    delay = _lognormal(rng, nc, 3 * HOUR, 1.2, 300, 5 * DAY)
    created = f["ended"] + delay
    chosen &= created < end
    rows = np.flatnonzero(chosen)
    k = rows.size
    created = created[rows]
    # three moods: this contact solved it; a later contact of the request did; nobody did
    tier = np.where(f["resolved"][rows], 0, np.where(f["req_resolved"][rows], 1, 2))
    is_nps = rng.random(k) < 0.65
    nps = [rng.choice(11, k, p=p) for p in NPS_BY_TIER]
    csat = [1 + rng.choice(5, k, p=p) for p in CSAT_BY_TIER]
    score = np.where(is_nps, np.choose(tier, nps), np.choose(tier, csat))
    good = np.where(is_nps, score >= 8, score >= 4)
    later = rng.random(k) < 0.12
    upd = created + _lognormal(rng, k, 6 * HOUR, 1.0, 60, 3 * DAY)
    later &= upd < end
    has_comment = later | (rng.random(k) < 0.25)
    text = rng.integers(0, len(_COMMENTS_GOOD), k)
    comment = pc.if_else(pa.array(good), _pick(_COMMENTS_GOOD, text), _pick(_COMMENTS_BAD, text))
    comment = _mask_null(comment, has_comment)
    s_order = np.lexsort((np.arange(k), created))
    ids = 9_100_000 + np.cumsum(rng.integers(1, 6, k))
    take = pa.array(s_order)
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(k), pa.int64()),
            _digits(ids),
            pa.array(rows[s_order], pa.int64()),
            pa.array(f["cust"][rows][s_order], pa.int64()),
            pc.take(_pick(["csat", "nps"], is_nps.astype(np.int64)), take),
            pa.array(score[s_order], pa.int64()),
            pc.take(comment, take),
            pa.array(created[s_order], pa.int64()),
            pa.array(np.where(later, upd, created)[s_order], pa.int64()),
        ],
        schema=SURVEYS,
    )


def _customers_table(cust: dict) -> pa.Table:
    has_crm = cust["has_crm"]
    return pa.Table.from_arrays(
        [
            pa.array(cust["idx"], pa.int64()),
            cust["name"],
            cust["email"],
            cust["own"],
            cust["shared"],
            cust["shared_kind"],
            cust["psid"],
            cust["chat_id"],
            cust["crm_id"],
            _opt_int(cust["crm_created"], has_crm),
            _opt_int(cust["crm_updated"], has_crm),
            cust["crm_phone"],
        ],
        schema=CUSTOMERS,
    )


# --------------------------------------------------------------------------------------------
# what the identity rule of spec section 3 can recover from this world
# --------------------------------------------------------------------------------------------


def normalize_phone(raw: pa.Array) -> pa.Array:
    """E.164 for the Brazilian formats this generator writes (what ``phonenumbers`` with
    region BR yields for them; kept here so the ceiling needs no per-row Python)."""
    d = pc.replace_substring_regex(raw, r"[^0-9]", "")
    n = pc.utf8_length(d)
    intl = pc.and_(pc.starts_with(d, "55"), pc.greater_equal(n, 12))
    trunk = pc.starts_with(d, "0")
    national = pc.if_else(trunk, pc.utf8_slice_codeunits(d, 1), d)
    return pc.if_else(intl, _cat("+", d), _cat("+55", national))


def normalize_email(raw: pa.Array) -> pa.Array:
    return pc.utf8_lower(pc.utf8_trim_whitespace(raw))


def _components(n_nodes: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected-component label (smallest node id) per node: min-label hooking + jumping."""
    label = np.arange(n_nodes, dtype=np.int64)
    while True:
        lu, lv = label[u], label[v]
        m = np.minimum(lu, lv)
        before = label.copy()
        # scatter-min via sort: the last write per index wins, so write largest first
        for idx in (lu, lv):
            o = np.lexsort((-m, idx))
            label[idx[o]] = np.minimum(label[idx[o]], m[o])
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(label, before):
            return label


def _pairs(counts: np.ndarray) -> int:
    c = counts.astype(np.int64)
    return int((c * (c - 1) // 2).sum())


def identity_clusters(
    world: World, max_identifier_degree: int = MAX_IDENTIFIER_DEGREE
) -> tuple[np.ndarray, np.ndarray, int]:
    """The spec's identity rule on this world: (cluster label per contact, shared flag per
    identifier node, number of nodes). Nodes: typed identifier values; edges: identifiers in
    one record (contacts, CRM rows with e-mail + phone + crm id); identifiers with more than
    ``max_identifier_degree`` distinct neighbours lose their edges. A contact belongs to the
    component of its first non-shared identifier; a contact with none is a cluster of its own
    (label ``n_nodes + row``)."""
    c, cu = world.contacts, world.customers
    crm = cu.filter(pc.is_valid(cu.column("crm_id")))
    typed = [
        (
            "phone",
            normalize_phone(c.column("phone_raw")),
            normalize_phone(crm.column("crm_phone_e164")),
        ),
        ("email", normalize_email(c.column("email_raw")), normalize_email(crm.column("email"))),
        ("messenger_psid", c.column("messenger_psid"), pa.nulls(crm.num_rows, pa.string())),
        ("chat_contact_id", c.column("chat_contact_id"), pa.nulls(crm.num_rows, pa.string())),
        ("crm_id", c.column("crm_id"), crm.column("crm_id")),
    ]
    cols = [
        pa.chunked_array(
            [
                pc.binary_join_element_wise(t + ":", x, "")
                for x in (pc.cast(a, pa.string()), pc.cast(b, pa.string()))
            ]
        ).combine_chunks()
        for t, a, b in typed
    ]
    enc = pa.chunked_array(cols).combine_chunks().dictionary_encode()
    n_nodes = len(enc.dictionary)
    n_rec = len(cols[0])
    ids = pc.fill_null(pc.cast(enc.indices, pa.int64()), -1).to_numpy()
    node = ids.reshape(len(cols), n_rec)  # node id per (identifier type, record); -1 = none
    us, vs = [], []
    for a in range(len(cols)):
        for b in range(a + 1, len(cols)):
            ok = (node[a] >= 0) & (node[b] >= 0)
            us.append(node[a][ok])
            vs.append(node[b][ok])
    u, v = np.concatenate(us), np.concatenate(vs)
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    key = np.unique(lo * n_nodes + hi)
    lo, hi = key // n_nodes, key % n_nodes
    degree = np.bincount(lo, minlength=n_nodes) + np.bincount(hi, minlength=n_nodes)
    shared = degree > max_identifier_degree
    keep = ~shared[lo] & ~shared[hi]
    label = _components(n_nodes, lo[keep], hi[keep])
    # a contact's customer: the component of its first identifier that is not shared
    nc = c.num_rows
    pred = np.full(nc, -1, dtype=np.int64)
    for a in range(len(cols)):
        nid = node[a][:nc]
        ok = (pred < 0) & (nid >= 0) & ~shared[np.maximum(nid, 0)]
        pred[ok] = label[nid[ok]]
    # only shared identifiers (a switchboard call without authentication): a customer of its
    # own, as in the pipeline (int_contacts_identified). The guard exists so that a shared
    # identifier links nobody; one pseudo-customer per switchboard would link every such caller
    unidentified = pred < 0
    pred[unidentified] = n_nodes + np.flatnonzero(unidentified)
    return pred, shared, n_nodes


def identity_ceiling(world: World, max_identifier_degree: int = MAX_IDENTIFIER_DEGREE) -> dict:
    """Pairwise precision/recall/F1 over contacts of the spec's identity rule (section 3)
    applied to this world's normalized identifiers, against the true customers: the best score
    the pipeline's identity stitching can reach on this world."""
    c = world.contacts
    pred, shared, n_nodes = identity_clusters(world, max_identifier_degree)
    nc = c.num_rows
    unidentified = pred >= n_nodes
    true = c.column("customer_idx").to_numpy()
    _, joint = np.unique(true * (n_nodes + nc) + pred, return_counts=True)
    tp = _pairs(joint)
    true_pairs = _pairs(np.unique(true, return_counts=True)[1])
    pred_pairs = _pairs(np.unique(pred, return_counts=True)[1])
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_customers": int(np.unique(true).size),
        "found_customers": int(np.unique(pred).size),
        "shared_identifiers": int(shared.sum()),
        "unidentified_contacts": int(unidentified.sum()),
    }

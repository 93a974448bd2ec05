"""The ledger's tables (SQLAlchemy 2.x), the same on SQLite and PostgreSQL.

Amounts are integers (grams CO2e, points). Byte strings (hashes, addresses, the
encoded leaf) are stored as binary. A ledger entry keeps its leaf, the values that are
sealed and anchored, beside the columns that queries use; the audit holds the two
equal. The leaf is stored without its ABI padding (:class:`StoredLeaf`) and read as the
exact ABI bytes that are hashed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from ledger.leaf import (
    ENCODED_SIZE,
    LEAF_ENTRY_ID,
    LEAF_PARTNER,
    LEAF_RECORD_HASH,
    STORED_SIZE,
    expand_leaf,
    leaf_methodology,
    leaf_quantity,
    store_leaf,
)

# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


def intake_key(column: str, target: str) -> ForeignKeyConstraint:
    """The foreign key of a table intake writes for every record: declared on SQLite only
    (migration 0022 dropped it on PostgreSQL).

    On PostgreSQL a foreign key is a trigger that runs a query for each row written,
    about 17 ms of server CPU a 1,000 records (docs/benchmarks.md, "Intake on PostgreSQL
    without foreign keys, its lists as text"); on SQLite the check is a lookup of a
    cached rowid. What it guarded is kept by the code: intake writes only citizens it
    has just read (and locked, on PostgreSQL) in its own transaction, partners it has
    authenticated, and records it has just written or read, and nothing deletes
    citizens (an erasure keeps the row), partners or records."""
    return ForeignKeyConstraint([column], [target]).ddl_if(dialect="sqlite")


#: The table options of a table keyed by citizen that intake updates in place for every
#: submission (``balances``, ``citizen_totals``): on PostgreSQL half of each page is left
#: free, so an update's new row version fits beside the old one and is "heap-only" (no new
#: index entry, pruned without VACUUM). Their rows are per citizen, not per entry, so the
#: room costs less an entry as the ledger grows. The day and month totals, a row per
#: citizen, behaviour and period, keep full pages: half-empty ones made a 1,000,000-entry
#: ledger 1,590 bytes an entry against 1,448 (migration 0023; docs/benchmarks.md, "Totals
#: updated in place, on pages with room"). SQLite rewrites a row in place.
UPDATED_IN_PLACE = {"postgresql_with": {"fillfactor": 50}}


class StoredLeaf(TypeDecorator[bytes]):
    """An entry's leaf: written in its ABI form and stored without the padding
    (:func:`ledger.leaf.store_leaf`), read back in its ABI form. Statements that skip
    it expand or store the leaf themselves: the audit's driver reads unpack it once
    (:func:`~ledger.leaf.stored_values`, then :func:`~ledger.leaf.abi_form` for the
    hash), the sealer's expand a chunk at a time (``ledger.batch_builder``), intake's
    bulk writes take the stored form from
    :func:`ledger.entries.entry_values`. A value that is no canonical leaf is
    stored as it is, for the audit to find."""

    impl = LargeBinary(STORED_SIZE)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, bytes) and len(value) == ENCODED_SIZE:
            try:
                return store_leaf(value)
            except ValueError:
                return value
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else expand_leaf(bytes(value))


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    signing_address: Mapped[bytes] = mapped_column(LargeBinary(20), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Citizen(Base):
    """A pseudonymous account. The salt is secret; erasing it unlinks every leaf."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    account: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    erased_at: Mapped[int | None] = mapped_column(BigInteger)


class Balance(Base):
    __tablename__ = "balances"
    __table_args__ = (CheckConstraint("points >= 0", name="balance_never_negative"),
                      UPDATED_IN_PLACE)

    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger, default=0)


class ActivityRecord(Base):
    """A partner's record exactly as submitted (RFC 8785 canonical JSON) and its fate.

    ``duplicate`` records are the same real behaviour as an earlier record from another
    partner (``duplicate_of``); they are kept, never credited."""

    __tablename__ = "activity_records"
    __table_args__ = (UniqueConstraint("partner_id", "partner_record_id"),
                      Index("ix_records_citizen_behaviour", "citizen_id", "behaviour",
                            "occurred_at"),
                      intake_key("partner_id", "partners.id"),
                      intake_key("citizen_id", "citizens.id"),
                      intake_key("duplicate_of", "activity_records.id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(Integer)
    partner_record_id: Mapped[str] = mapped_column(String(128))
    citizen_id: Mapped[int | None] = mapped_column(Integer)
    behaviour: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    #: the record as received (RFC 8785); NULL when it is exactly its columns and its
    #: citizen's pseudonym (:func:`ledger.records.rebuilt_record`, migration 0017)
    raw: Mapped[str | None] = mapped_column(Text)
    record_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16))  # credited | capped | duplicate
    duplicate_of: Mapped[int | None] = mapped_column(BigId)
    entry_id: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # None when capped to 0
    #: the submission that brought it (the 32 bytes of ``submissions.id``, which is them in
    #: hex; migration 0019 keeps the bytes, not the 66 characters); NULL in operator mode
    submission_id: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    received_at: Mapped[int] = mapped_column(BigInteger)


class DailyTotal(Base):
    """Grams already credited per citizen, behaviour and (local) day: the cap's memory."""

    __tablename__ = "daily_totals"
    __table_args__ = (intake_key("citizen_id", "citizens.id"),)

    citizen_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    behaviour: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # days since epoch, local
    grams: Mapped[int] = mapped_column(BigInteger, default=0)


class MonthlyTotal(Base):
    """Grams already credited per citizen, behaviour and (local) month: the monthly cap's
    memory. ``month`` is ``year * 12 + month - 1``."""

    __tablename__ = "monthly_totals"
    __table_args__ = (intake_key("citizen_id", "citizens.id"),)

    citizen_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    behaviour: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[int] = mapped_column(Integer, primary_key=True)
    grams: Mapped[int] = mapped_column(BigInteger, default=0)


class CitizenTotal(Base):
    """What a citizen's records of one behaviour add up to, kept as they are written:
    credit entries (``kind`` 1) and their grams and points, or debits (``kind`` 2,
    behaviour ``REDEMPTION``) and the points spent. A citizen's page reads these, never
    their entries. ``longest``: the longest interval (end − start, seconds) of any of the
    citizen's activity records of the behaviour (credited, capped or duplicate), so
    de-duplication looks back that far, not the 31 days any record may last."""

    __tablename__ = "citizen_totals"
    __table_args__ = (intake_key("citizen_id", "citizens.id"), UPDATED_IN_PLACE)

    citizen_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[int] = mapped_column(Integer, primary_key=True)
    behaviour: Mapped[str] = mapped_column(String(32), primary_key=True)
    entries: Mapped[int] = mapped_column(BigInteger)
    grams: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    longest: Mapped[int] = mapped_column(BigInteger)


class LedgerEntry(Base):
    """A credit (a reduction) or a debit (a redemption). Immutable once written.

    ``seq`` orders entries; a batch holds a contiguous range of it. The entry id has no
    column and no index (migration 0021): it is the leaf's first 32 bytes, stored and
    encoded alike, and SQL reads it there (:func:`leaf_entry_id`). :class:`EntryLocator`
    finds sealed entries by it, and the few not sealed yet are scanned (see
    :func:`ledger.entries.find_entry`). Its ids are unique by construction (a partner's
    address and record id, unique per partner; a citizen's redemption key), and the
    locator's key holds them unique when they are sealed.
    """

    __tablename__ = "ledger_entries"
    # A citizen's entries in a period (statements, a partner's report): by time.
    # A citizen's pages, all behaviours merged or one: by behaviour and seq, so a page
    # costs its size whatever the history (``ledger.views.citizen_entries``; migration
    # 0020 dropped the (citizen, seq) index the merged page was read down before).
    __table_args__ = (Index("ix_entries_citizen", "citizen_id", "occurred_at"),
                      Index("ix_entries_citizen_behaviour_seq", "citizen_id", "behaviour", "seq"),
                      intake_key("citizen_id", "citizens.id"))

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    citizen_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[int] = mapped_column(Integer)
    behaviour: Mapped[str] = mapped_column(String(32))
    reduction_grams: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[int] = mapped_column(BigInteger)
    leaf: Mapped[bytes] = mapped_column(StoredLeaf())

    # What only the leaf holds. The record hash and partner lost their columns in
    # migration 0018, the entry id, quantity and methodology in 0021: each column was the
    # leaf's bytes again. Kind, behaviour, grams, points and time keep theirs, for the
    # queries that filter or add them up.
    @hybrid_property
    def entry_id(self) -> bytes:
        """The entry's id (in SQL: the stored leaf's first 32 bytes)."""
        return self.leaf[LEAF_ENTRY_ID]

    @entry_id.inplace.expression
    @classmethod
    def _entry_id_in_sql(cls) -> ColumnElement[bytes]:
        return leaf_entry_id(cls.leaf).label("entry_id")

    @property
    def quantity(self) -> int:
        """The quantity in the behaviour's unit, as the leaf holds it."""
        return leaf_quantity(self.leaf)

    @property
    def methodology(self) -> int:
        """The methodology version the entry was quantified under, as the leaf holds it."""
        return leaf_methodology(self.leaf)

    @property
    def record_hash(self) -> bytes:
        """keccak256 of the raw record (zero for a debit), as the leaf holds it."""
        return self.leaf[LEAF_RECORD_HASH]

    @property
    def partner_address(self) -> bytes:
        """The partner's signing address (the operator's for a debit), as the leaf holds it."""
        return self.leaf[LEAF_PARTNER]


def leaf_entry_id(leaf: Any) -> ColumnElement[bytes]:
    """An entry's id in SQL, from its ``leaf`` column (of the ORM or a Core table): the
    first 32 bytes, stored and encoded alike."""
    return func.substr(leaf, literal_column("1"), literal_column(str(LEAF_ENTRY_ID.stop)),
                       type_=LargeBinary(LEAF_ENTRY_ID.stop))


class Batch(Base):
    """A sealed range of entries, its tree, and its anchoring's progress.

    status: ``sealed`` (tree stored, nothing sent) → ``submitted`` (signed tx recorded,
    maybe broadcast) → ``anchored`` (receipt with enough confirmations).
    """

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    leaf_count: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16))
    sealed_at: Mapped[int] = mapped_column(BigInteger)
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    contract_address: Mapped[str | None] = mapped_column(String(42))
    tx_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    anchored_at: Mapped[int | None] = mapped_column(BigInteger)


class EntryLocator(Base):
    """Where a sealed entry is: its id's seq and batch, for lookups by entry id.

    Written when its batch is sealed, in the batch's transaction, all of a batch's ids
    in id order. An index on the random 32-byte ids kept at ingest instead dirties about
    one index page per entry once the ledger outgrows the cache (measured: ~60 % of the
    pages a 1,000-record submission wrote at 100,000 entries); inserted sorted, a batch's
    ids share pages. ``batch_id`` has no foreign key (migration 0015): the rows are
    written in their batch's transaction, batches are never deleted, and checking the
    key for every row was most of the insert's time on PostgreSQL.

    Keyed by the id's first :data:`ENTRY_KEY_BYTES` bytes (migration 0019), not all 32:
    a reader matches the whole id on the entry it leads to. Sixteen bytes of keccak keep
    ids apart at any ledger size (two of 10^10 ids share them with odds of about 10^-19,
    and making two share them takes about 2^64 hashes), so the key still refuses an id
    sealed twice, and on PostgreSQL the row (60 bytes) and its index entry (36) are what
    a 32-byte key's alignment made 84 and 52.
    """

    __tablename__ = "entry_locator"
    __table_args__ = {"sqlite_with_rowid": False}  # the key is the table: no rowid b-tree

    seq: Mapped[int] = mapped_column(BigInteger)
    batch_id: Mapped[int] = mapped_column(Integer)
    entry_key: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)


#: how many leading bytes of an entry id key the locator
ENTRY_KEY_BYTES = 16


def entry_key(entry_id: Any) -> Any:
    """The locator's key of an entry id, in SQL (a column or a bound parameter)."""
    return func.substr(entry_id, literal_column("1"), literal_column(str(ENTRY_KEY_BYTES)))


class BatchTreeChunk(Base):
    """Every node of a batch's tree, so any entry's proof is served without rebuilding:
    32 nodes (1 KiB) a row, so a proof reads only the rows of its own nodes
    (:mod:`ledger.store.trees`)."""

    __tablename__ = "batch_tree_chunks"

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    #: the row's place: it holds nodes chunk * 32 .. chunk * 32 + 31 of the heap buffer
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    nodes: Mapped[bytes] = mapped_column(LargeBinary)


class Reward(Base):
    __tablename__ = "rewards"
    __table_args__ = (CheckConstraint("stock >= 0", name="stock_never_negative"),
                      CheckConstraint("points_cost > 0", name="cost_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    points_cost: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(BigInteger)


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (UniqueConstraint("citizen_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    points: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[int] = mapped_column(BigInteger)


class ChainDeployment(Base):
    """Where this ledger anchors: one contract per chain, deployed once."""

    __tablename__ = "chain_deployments"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)


class Lease(Base):
    """A named lock held in the database (e.g. the one sealer), with an expiry."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[float] = mapped_column(BigInteger)


class ApiKey(Base):
    """A partner's or auditor's API key: only a SHA-256 of its secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)  # public half, for lookup
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    role: Mapped[str] = mapped_column(String(16))  # partner | auditor
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class CitizenToken(Base):
    """A citizen's bearer token, hashed like API keys."""

    __tablename__ = "citizen_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class Submission(Base):
    """One signed partner submission and the operator's signed receipt for it.

    ``nonce`` and ``deadline`` are what the partner signed with it (NULL before signing
    version 2): a partner's nonce is used once, which the unique index holds."""

    __tablename__ = "submissions"
    __table_args__ = (Index("uq_submissions_partner_nonce", "partner_id", "nonce", unique=True),)

    id: Mapped[str] = mapped_column(String(66), primary_key=True)  # 0x + 32 bytes hex
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    records_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    record_count: Mapped[int] = mapped_column(Integer)
    signature: Mapped[str] = mapped_column(String(140))
    accepted: Mapped[int] = mapped_column(Integer)
    duplicate: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    grams: Mapped[int] = mapped_column(BigInteger)
    receipt: Mapped[str] = mapped_column(Text)
    received_at: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    deadline: Mapped[int | None] = mapped_column(BigInteger)


class CityCell(Base):
    """The public city report's cell: a local day and behaviour, and the credits in it
    (received within the settling time of the day's end), kept as they are written (see
    :mod:`ledger.store.rollups`)."""

    __tablename__ = "city_cells"
    __table_args__ = (Index("ix_city_cells_unfolded", "part", postgresql_where=text("part <> 0"),
                            sqlite_where=text("part <> 0")),
                      {"sqlite_with_rowid": False})

    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # days since epoch, local
    behaviour: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: whose additions these are: 0 once folded, else the writing database session's
    #: (PostgreSQL's backend pid), so concurrent intakes never wait on one hot row
    part: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=0)
    entries: Mapped[int] = mapped_column(BigInteger)
    grams: Mapped[int] = mapped_column(BigInteger)
    citizens: Mapped[int] = mapped_column(BigInteger)


class CityPresence(Base):
    """A citizen present in the city's cells of a day: in a behaviour's (``scope`` its
    code), or in any (``scope`` ``*``)."""

    __tablename__ = "city_presence"
    # A day's citizens in a scope, for the few of withheld cells. Keyed by (scope, day)
    # alone: PostgreSQL keeps one key and a list of row pointers per day of a scope
    # (B-tree deduplication), a fraction of what (scope, day, citizen) took (migration
    # 0019; docs/benchmarks.md, "Narrower keys"); SQLite's index of a table without rowids
    # ends with the primary key's other columns anyway, so it holds the citizen as before.
    __table_args__ = (Index("ix_city_presence_day", "scope", "day"),
                      {"sqlite_with_rowid": False})

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    citizen_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)


class CityGap(Base):
    """How many citizens present on ``day`` in ``scope`` were last present ``gap`` days
    before: the distinct citizens of any window, summed over its days."""

    __tablename__ = "city_gaps"
    __table_args__ = (Index("ix_city_gaps_unfolded", "part", postgresql_where=text("part <> 0"),
                            sqlite_where=text("part <> 0")),
                      {"sqlite_with_rowid": False})

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    gap: Mapped[int] = mapped_column(Integer, primary_key=True)
    part: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=0)  # as CityCell's
    citizens: Mapped[int] = mapped_column(BigInteger)


# -- month statements and green-credit credentials (#20) -----------------------------------

class Statement(Base):
    """One month's statement tree and its anchoring's progress.

    status: ``built`` (tree stored) → ``submitted`` (signed tx recorded) → ``anchored``.
    """

    __tablename__ = "statements"

    period: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # yyyymm
    through_batch_id: Mapped[int] = mapped_column(BigInteger)
    through_seq: Mapped[int] = mapped_column(BigInteger)
    period_end: Mapped[int] = mapped_column(BigInteger)  # unix seconds of the local month's end
    leaf_count: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16))
    built_at: Mapped[int] = mapped_column(BigInteger)
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    contract_address: Mapped[str | None] = mapped_column(String(42))
    tx_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    anchored_at: Mapped[int | None] = mapped_column(BigInteger)


class StatementTreeChunk(Base):
    """Every node of a month's statement tree, in rows of 32 nodes (1 KiB) as batches'
    trees are (:class:`BatchTreeChunk`, :mod:`ledger.store.trees`), so a citizen's proof
    reads only the rows of its own nodes."""

    __tablename__ = "statement_tree_chunks"

    period: Mapped[int] = mapped_column(ForeignKey("statements.period"), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    nodes: Mapped[bytes] = mapped_column(LargeBinary)


class StatementLeaf(Base):
    """An account's leaf in a month's statement, and its totals per area (JSON) that the
    leaf's ``areas`` value commits to."""

    __tablename__ = "statement_leaves"
    __table_args__ = (Index("ix_statement_leaves_citizen", "citizen_id", "period"),)

    period: Mapped[int] = mapped_column(ForeignKey("statements.period"), primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), primary_key=True)
    leaf: Mapped[bytes] = mapped_column(LargeBinary(288))
    areas: Mapped[str] = mapped_column(Text)


class GreenCredential(Base):
    """An issued green-credit credential: its status index is the row's id."""

    __tablename__ = "green_credentials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    holder: Mapped[bytes] = mapped_column(LargeBinary(20))
    first_period: Mapped[int] = mapped_column(Integer)
    last_period: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    revocation_tx: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class BatchAudit(Base):
    """A large batch's audit run as a job (#24): who runs it, how far it is, and once done
    its report as JSON, so any serving process answers with it and none runs it twice."""

    __tablename__ = "batch_audits"

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), primary_key=True,
                                          autoincrement=False)
    state: Mapped[str] = mapped_column(String(16))  # running | done | failed
    holder: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[int] = mapped_column(BigInteger)
    heartbeat_at: Mapped[int] = mapped_column(BigInteger)
    entries_done: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[str | None] = mapped_column(Text)


# -- campaigns, bonuses and rankings (#21) ------------------------------------------------

class CampaignRow(Base):
    """A campaign version's rules (their RFC 8785 text) and their publication's progress.

    status: ``registered`` → ``submitted`` (signed tx recorded) → ``published`` (the
    contract pins ``rules_hash``). Only published versions award anything."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("campaign_id", "version", name="uq_campaigns_id_version"),)

    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(Integer)
    rules: Mapped[str] = mapped_column(Text)
    rules_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    starts_at: Mapped[int] = mapped_column(BigInteger)
    ends_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    tx_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    contract_address: Mapped[str | None] = mapped_column(String(42))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    published_at: Mapped[int | None] = mapped_column(BigInteger)


class CampaignOffer(Base):
    """A reward of the catalogue that is a campaign's partner offer: redeemable only from
    ``valid_from`` to before ``valid_until`` (unix seconds)."""

    __tablename__ = "campaign_offers"

    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"), primary_key=True)
    campaign_key: Mapped[bytes] = mapped_column(ForeignKey("campaigns.key"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    valid_from: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[int] = mapped_column(BigInteger)


class CampaignBonus(Base):
    """A bonus entry and the credit entry that earned it: one per entry and campaign."""

    __tablename__ = "campaign_bonuses"

    campaign_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    earned_by: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    campaign_key: Mapped[bytes] = mapped_column(ForeignKey("campaigns.key"))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    entry_id: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # None: capped to 0
    points: Mapped[int] = mapped_column(BigInteger)


class CampaignBonusTotal(Base):
    """Bonus points a citizen has had from a campaign, per behaviour and (``*``) in all:
    the caps' memory."""

    __tablename__ = "campaign_bonus_totals"

    campaign_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), primary_key=True)
    behaviour: Mapped[str] = mapped_column(String(32), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)


class CampaignParticipant(Base):
    """A citizen who opted in to a campaign's public ranking, under a nickname. Erasure
    and opting out delete the row."""

    __tablename__ = "campaign_participants"
    __table_args__ = (UniqueConstraint("campaign_id", "nickname",
                                       name="uq_campaign_participants_nickname"),)

    campaign_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), primary_key=True)
    nickname: Mapped[str] = mapped_column(String(32))
    joined_at: Mapped[int] = mapped_column(BigInteger)


class CampaignStanding(Base):
    """A citizen's standing in a campaign's ranking while it runs: the metric of the credits
    the bonus step has looked at, and when the latest of them occurred. Kept in the step's
    transaction that marks each credit looked at, so the provisional board reads these
    rows, never the entries (#21)."""

    __tablename__ = "campaign_standings"
    __table_args__ = (Index("ix_campaign_standings_metric", "campaign_id", "metric"),)

    campaign_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), primary_key=True)
    metric: Mapped[int] = mapped_column(BigInteger)
    reached_at: Mapped[int] = mapped_column(BigInteger)


class CampaignRanking(Base):
    """A campaign's closed ranking and its anchoring's progress (its tree's rows:
    :class:`RankingTreeChunk`)."""

    __tablename__ = "campaign_rankings"

    campaign_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    campaign_key: Mapped[bytes] = mapped_column(ForeignKey("campaigns.key"))
    through_batch_id: Mapped[int] = mapped_column(BigInteger)
    leaf_count: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16))  # closed | submitted | anchored
    closed_at: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    contract_address: Mapped[str | None] = mapped_column(String(42))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    anchored_at: Mapped[int | None] = mapped_column(BigInteger)


class RankingTreeChunk(Base):
    """Every node of a closed ranking's tree, in rows of 32 nodes (1 KiB) as batches' and
    statements' trees are (:mod:`ledger.store.trees`), so a participant's rank proof reads
    only the rows of its own nodes."""

    __tablename__ = "ranking_tree_chunks"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign_rankings.campaign_id"),
                                             primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    nodes: Mapped[bytes] = mapped_column(LargeBinary)


class CampaignRank(Base):
    """A ranked account's leaf in a closed ranking, and its prize entry if it won one."""

    __tablename__ = "campaign_ranks"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign_rankings.campaign_id"),
                                             primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    account: Mapped[bytes] = mapped_column(LargeBinary(32))
    metric: Mapped[int] = mapped_column(BigInteger)
    reached_at: Mapped[int] = mapped_column(BigInteger)
    prize: Mapped[int] = mapped_column(BigInteger)
    prize_entry_id: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    leaf: Mapped[bytes] = mapped_column(LargeBinary(160))

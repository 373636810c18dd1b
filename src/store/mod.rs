//! The state store: one narrow trait, a SQLite and a Postgres implementation.
//!
//! Every Stripe object is a JSON document plus the few columns lists filter
//! on. Writes are batches applied in one transaction, so an object and the
//! event that records its change land together or not at all. Updates carry
//! the version they were read at (optimistic concurrency): of two racing
//! writers exactly one wins, the other sees `StoreError::Conflict`.

mod deadline;
mod postgres;
mod postgres_due;
mod sqlite;
mod sqlite_due;

use async_trait::async_trait;
use serde_json::Value;

pub use deadline::Deadline;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object changed since it was read, or an inserted id exists.
    #[error("write conflict")]
    Conflict,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("stored document is not valid JSON: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The store cannot be used: unreachable, too slow, or its file is gone.
    #[error("{0}")]
    Unavailable(String),
    /// An idempotent request's hold on its key ran out and another
    /// request took the key: this one's writes must not land.
    #[error("the idempotency key was claimed by another request")]
    ClaimLost,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Whether the store could not be reached at all (as opposed to a
    /// statement that failed): answered 503 rather than 500.
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Db(err) => {
                matches!(
                    err,
                    sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::Io(_)
                        | sqlx::Error::Tls(_)
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Protocol(_)
                ) || matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| UNREACHABLE_CODES.contains(&c.as_ref())))
            }
            _ => false,
        }
    }
}

/// Postgres codes for a server that is there but cannot serve now:
/// statement timeout (57014), shutting down (57P01-57P03), lock timeout
/// (55P03), too many connections (53300).
const UNREACHABLE_CODES: &[&str] = &["57014", "57P01", "57P02", "57P03", "55P03", "53300"];

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub object: String,
    pub created: i64,
    pub customer: Option<String>,
    pub deleted: bool,
    /// Incremented by every update; what optimistic concurrency compares.
    pub version: i64,
    /// Insertion order (0 until stored): lists are newest first by it.
    pub seq: i64,
    pub data: Value,
}

impl Record {
    pub fn new(object: &str, data: Value) -> Self {
        Self {
            id: data["id"].as_str().unwrap_or_default().to_owned(),
            object: object.to_owned(),
            created: data["created"].as_i64().unwrap_or_default(),
            customer: customer_of(&data),
            deleted: false,
            version: 0,
            seq: 0,
            data,
        }
    }

    /// The same record with a new document, to be written back. The
    /// `customer` column follows the document's `customer` (also when it
    /// becomes null: a detached PaymentMethod leaves its customer's lists);
    /// a document without that key (a tombstone, an item pointer) keeps it.
    pub fn with_data(&self, data: Value) -> Self {
        let customer = match data.get("customer") {
            Some(_) => customer_of(&data),
            None => self.customer.clone(),
        };
        Self {
            customer,
            data,
            ..self.clone()
        }
    }
}

fn customer_of(data: &Value) -> Option<String> {
    match &data["customer"] {
        Value::String(id) => Some(id.clone()),
        Value::Object(obj) => obj.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub enum Write {
    Insert(Record),
    /// Replace the record if it is still at `record.version`.
    Update(Record),
    /// Store the answer of the idempotent request that claimed a key, in
    /// the same transaction as the request's objects and events.
    Answer(Answer),
    /// Work that falls due later, stored with the change that makes it
    /// due. An item already stored under the same id stays as it is (so
    /// every server may ensure a periodic item at start-up).
    Schedule(DueItem),
    /// Forgets a due item, if there is one.
    Unschedule {
        id: String,
    },
    /// Forgets every due item that follows a test clock (it was deleted).
    UnscheduleClock {
        test_clock: String,
    },
    /// The claimed item ran: deleted in the transaction that commits what
    /// running it changed. A claim another scheduler has taken over since
    /// (the lease ran out) refuses it, and the writes with it
    /// (`StoreError::ClaimLost`): an item's effects land once.
    Done {
        id: String,
        claimed_by: String,
    },
    /// Forgets data older than its retention, across accounts.
    Purge(Purge),
}

/// Data kept for a while only (see [`Write::Purge`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Purge {
    /// Events (and their deliveries) created before this (unix seconds).
    Events { before: i64 },
    /// Idempotency keys first used before this (unix seconds) and no
    /// longer held by a running request.
    IdempotencyKeys { before: i64 },
}

/// One piece of work due at a time: what the scheduler runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DueItem {
    /// Fixed by the kind for items that exist once (a session's expiry, a
    /// sweep), so they can be found and replaced.
    pub id: String,
    /// The account it acts in ("" for work across accounts).
    pub account: String,
    /// The test clock whose time it follows; None: real time.
    pub test_clock: Option<String>,
    /// Unix milliseconds.
    pub due_at: i64,
    /// Which registered handler runs it.
    pub kind: String,
    /// The object it acts on ("" when none).
    pub target: String,
    /// What else the handler needs.
    pub payload: Value,
    /// The claim holding it (set by `claim_due`).
    pub claimed_by: Option<String>,
}

/// Which due items a claim takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DueScope<'a> {
    /// Items on real time due by `now`: none that follow a test clock.
    Wall,
    /// The items of one test clock due by `up_to` (milliseconds of the
    /// clock's time), strictly in order: none while an earlier one is held.
    Clock { test_clock: &'a str, up_to: i64 },
}

/// What a request with an `Idempotency-Key` answered, kept for replays.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The key's account: the caller's, which for a publishable key is not
    /// the account the objects live in.
    pub account: String,
    pub key: String,
    /// The claiming request: a claim taken over by another request (its
    /// hold ran out) refuses this answer and the writes with it.
    pub request_id: String,
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Customer(String),
    /// A dotted JSON path equal to one of the values (strings or booleans).
    Field(&'static str, Vec<Value>),
    /// A dotted JSON path whose string value starts with a prefix.
    FieldPrefix(&'static str, String),
    /// A dotted JSON path naming an array of strings that holds this one.
    ArrayContains(&'static str, String),
    /// A dotted JSON path naming an integer within the range.
    FieldRange(&'static str, Range),
    /// A dotted JSON path that is null or missing.
    Absent(&'static str),
    /// A top-level string field equal to this lower-case ASCII text,
    /// ignoring ASCII case: what the index on `email` answers.
    Folded(&'static str, String),
}

/// The fields with an index for [`Filter::Folded`] lookups.
pub const FOLDED_INDEXES: &[&str] = &["email"];

/// How an object names the object it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Owner {
    /// Its `customer` column.
    Customer,
    /// A top-level string field of its document (e.g. `invoice`).
    Field(&'static str),
}

impl Owner {
    /// The owner an object names.
    pub fn of(self, record: &Record) -> Option<&str> {
        match self {
            Owner::Customer => record.customer.as_deref(),
            Owner::Field(field) => record.data[field].as_str(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cursor {
    /// Newest first.
    Start,
    /// Older than the object with this sequence number.
    After(i64),
    /// Newer than the object with this sequence number (still returned newest first).
    Before(i64),
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub object: &'static str,
    pub filters: Vec<Filter>,
    pub created: Range,
    pub cursor: Cursor,
    pub limit: i64,
    pub include_deleted: bool,
}

impl ListQuery {
    pub fn new(object: &'static str) -> Self {
        Self {
            object,
            filters: Vec::new(),
            created: Range::default(),
            cursor: Cursor::Start,
            limit: 10,
            include_deleted: false,
        }
    }
}

/// Where an idempotency key stands when a request arrives with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First use (or the old use expired): go ahead, then `complete` it.
    Claimed,
    /// The first request with this key is still running.
    InProgress,
    /// The key was used for another request: its method and path, fingerprint.
    Mismatch { method_path: String },
    /// Replay this stored answer, first given to the request `request_id`.
    Replay {
        status: u16,
        body: String,
        request_id: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct IdempotencyRequest<'a> {
    pub account: &'a str,
    pub key: &'a str,
    pub method_path: &'a str,
    pub fingerprint: &'a str,
    /// The claiming request's Request-Id.
    pub request_id: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// Keys older than this (unix seconds) count as unused.
    pub expired_before: i64,
    /// Unix milliseconds: an in-flight claim whose hold ended before this
    /// was abandoned (its server died).
    pub now_ms: i64,
    /// Unix milliseconds: how long this claim holds unless renewed.
    pub lease_until: i64,
}

/// One event owed to one webhook destination (an endpoint, or the
/// forwarding URL). `data` holds where it goes, its secret and the log of
/// its attempts; the other fields are what the worker claims on.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub account: String,
    pub event_id: String,
    /// `pending` (owed, maybe retried later), `succeeded` or `failed` (gave up).
    pub status: String,
    /// Unix milliseconds: retry schedules go below a second.
    pub next_attempt_at: Option<i64>,
    pub created: i64,
    pub data: Value,
}

/// Decides which deliveries an event gets, given its account's webhook
/// endpoints (called by `fan_out`, inside its transaction).
pub type FanOutPlan<'a> = &'a (dyn Fn(&str, &Record, &[Record]) -> Vec<Delivery> + Send + Sync);

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres", for logs and /healthz.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> StoreResult<()>;
    async fn get(&self, account: &str, id: &str) -> StoreResult<Option<Record>>;
    /// The objects of `account` among `ids`, in no particular order: what a
    /// page of objects points at, in one query.
    async fn get_many(&self, account: &str, ids: &[String]) -> StoreResult<Vec<Record>>;
    /// For each of `owners`, the newest `per_owner` live objects of type
    /// `object` that name it as their `owner` (newest first within each):
    /// the lists embedded in a page of objects, in one query.
    async fn list_per_owner(
        &self,
        account: &str,
        object: &str,
        owner: Owner,
        owners: &[String],
        per_owner: i64,
    ) -> StoreResult<Vec<Record>>;
    /// An object by id alone, with the account that owns it: for callers
    /// that prove access with a secret the object holds (client secrets,
    /// page tokens) rather than with an API key.
    async fn find(&self, id: &str) -> StoreResult<Option<(String, Record)>>;
    /// The sequence number that orders `id` in lists (for cursors).
    async fn position(&self, account: &str, id: &str) -> StoreResult<Option<i64>>;
    async fn list(&self, account: &str, query: &ListQuery) -> StoreResult<Vec<Record>>;
    /// Applies all writes in one transaction, or none of them.
    async fn commit(&self, account: &str, writes: &[Write]) -> StoreResult<()>;
    /// Takes an idempotency key for a request, or says why it cannot. The
    /// answer is stored later by a [`Write::Answer`] in `commit`.
    async fn claim_idempotency(&self, request: &IdempotencyRequest<'_>) -> StoreResult<Claim>;
    /// Extends a running request's hold on its key (unix milliseconds).
    async fn renew_idempotency(
        &self,
        account: &str,
        key: &str,
        request_id: &str,
        lease_until: i64,
    ) -> StoreResult<()>;
    /// Forgets an in-flight claim whose request failed on our side.
    async fn release_idempotency(
        &self,
        account: &str,
        key: &str,
        request_id: &str,
    ) -> StoreResult<()>;
    /// Removes every object, idempotency key and delivery of an account.
    async fn wipe_account(&self, account: &str) -> StoreResult<u64>;

    /// Takes up to `limit` committed events not yet matched to endpoints
    /// (each taken by one caller only, whichever server it runs in), stores
    /// the deliveries `plan` gives each and sets its `pending_webhooks`, in
    /// one transaction. Returns how many events it took.
    async fn fan_out(&self, limit: i64, plan: FanOutPlan<'_>) -> StoreResult<usize>;
    /// Claims up to `limit` pending deliveries due at `now` (milliseconds) that no one holds
    /// (or whose holder's lease ran out), holding them until `lease_until`.
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>>;
    /// Stores a claimed delivery after an attempt and releases it; when it
    /// has just succeeded, its event owes one webhook fewer.
    async fn record_attempt(&self, delivery: &Delivery, succeeded: bool) -> StoreResult<()>;
    /// An account's deliveries, newest first.
    async fn list_deliveries(&self, account: &str, limit: i64) -> StoreResult<Vec<Delivery>>;

    /// Claims up to `limit` items due at `now` (milliseconds), earliest
    /// first, that no one holds (or whose holder's lease ran out), for
    /// `claimer` until `lease_until`. An item is held by one claim at a time,
    /// whichever server process asks.
    async fn claim_due(
        &self,
        scope: DueScope<'_>,
        now: i64,
        lease_until: i64,
        claimer: &str,
        limit: i64,
    ) -> StoreResult<Vec<DueItem>>;
    /// Whether a test clock has items due by `up_to` (held or not): what
    /// an advance still has to run.
    async fn clock_has_due(&self, test_clock: &str, up_to: i64) -> StoreResult<bool>;
}

impl ListQuery {
    /// Whether a record is one this query selects (its filters, `created`
    /// range, deletion and cursor), decided in memory: for objects a
    /// request has written but not yet committed.
    pub fn matches(&self, record: &Record) -> bool {
        let cursor_ok = match self.cursor {
            Cursor::Start => true,
            Cursor::After(seq) => record.seq < seq,
            Cursor::Before(seq) => record.seq > seq,
        };
        record.object == self.object
            && (self.include_deleted || !record.deleted)
            && self.created.contains(record.created)
            && cursor_ok
            && self.filters.iter().all(|f| f.matches(record))
    }
}

impl Filter {
    fn matches(&self, record: &Record) -> bool {
        let at = |path: &str| {
            path.split('.')
                .try_fold(&record.data, |value, key| value.get(key))
        };
        match self {
            Filter::Customer(customer) => record.customer.as_deref() == Some(customer),
            Filter::Field(path, values) => at(path).is_some_and(|v| values.contains(v)),
            Filter::FieldPrefix(path, prefix) => at(path)
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with(prefix.as_str())),
            Filter::ArrayContains(path, wanted) => at(path)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|i| i.as_str() == Some(wanted))),
            Filter::FieldRange(path, range) => at(path)
                .and_then(Value::as_i64)
                .is_some_and(|v| range.contains(v)),
            Filter::Absent(path) => at(path).is_none_or(Value::is_null),
            Filter::Folded(field, text) => record.data[field]
                .as_str()
                .is_some_and(|v| v.to_ascii_lowercase() == *text),
        }
    }
}

impl Range {
    pub fn contains(&self, value: i64) -> bool {
        self.gt.is_none_or(|b| value > b)
            && self.gte.is_none_or(|b| value >= b)
            && self.lt.is_none_or(|b| value < b)
            && self.lte.is_none_or(|b| value <= b)
    }

    /// The bounds that are set, as SQL comparison operators.
    pub fn bounds(&self) -> impl Iterator<Item = (&'static str, i64)> {
        [
            (">", self.gt),
            (">=", self.gte),
            ("<", self.lt),
            ("<=", self.lte),
        ]
        .into_iter()
        .filter_map(|(op, bound)| bound.map(|b| (op, b)))
    }
}

/// A field path written into SQL text (so expression indexes match): only
/// the code's own static paths reach here; anything else is a bug.
fn literal(path: &'static str) -> &'static str {
    assert!(
        path.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'),
        "not a plain field path: {path}"
    );
    path
}

/// Splits a dotted path for JSON path functions.
fn path_segments(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

/// Decides what a request gets when its key is already taken.
fn existing_claim(
    request: &IdempotencyRequest<'_>,
    method_path: String,
    fingerprint: String,
    status: Option<i64>,
    body: Option<String>,
    request_id: Option<String>,
) -> Claim {
    if method_path != request.method_path || fingerprint != request.fingerprint {
        return Claim::Mismatch { method_path };
    }
    match (status, body) {
        (Some(status), Some(body)) => Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
            request_id,
        },
        _ => Claim::InProgress,
    }
}

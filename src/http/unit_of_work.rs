//! One API request is one unit of work: the writes its handler decides on
//! are staged, not committed, and land in a single transaction when the
//! handler has answered, together with the request's idempotent answer.
//! A crash at any moment leaves either all of it or none of it.
//!
//! Reads through the request's `Ctx` see the staged writes (an overlay), so
//! a handler reads back what it decided. When the transaction meets a
//! version conflict (another request changed an object this one read and
//! rewrote), the whole handler runs again on the fresh state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::body::{MAX_BODY_BYTES, read_body};
use crate::http::error::ApiError;
use crate::http::error::store_error;
use crate::http::idempotency::{self, Hold};
use crate::http::state::AppState;
use crate::store::{Answer, ListQuery, Record, StoreError, Write};

/// How many times a request runs before its conflicts are reported.
const MAX_RUNS: usize = 8;
/// How often a running idempotent request renews its hold on its key.
const RENEW_EVERY: Duration = Duration::from_millis(1_000);

/// The writes one request has decided on, in order, and the versions of
/// the objects it read (to tell a decision made on stale state).
#[derive(Default)]
pub struct UnitOfWork {
    staged: Mutex<Staged>,
}

#[derive(Default)]
struct Staged {
    account: Option<String>,
    writes: Vec<Write>,
    /// (account, id) → the version read from the store.
    read: HashMap<(String, String), i64>,
}

/// Staged inserts sort as the newest objects, in the order they were made.
const STAGED_SEQ_BASE: i64 = i64::MAX / 2;

impl UnitOfWork {
    fn lock(&self) -> std::sync::MutexGuard<'_, Staged> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds writes; a later update of a staged object replaces the staged
    /// document (an insert stays an insert, an update keeps the version it
    /// was read at).
    pub fn stage(&self, account: &str, writes: &[Write]) -> Result<(), ApiError> {
        let mut staged = self.lock();
        match &staged.account {
            Some(known) if known != account => {
                return Err(ApiError::Internal(format!(
                    "one request wrote to two accounts ({known} and {account})"
                )));
            }
            Some(_) => {}
            None => staged.account = Some(account.to_owned()),
        }
        for write in writes {
            let Write::Update(record) = write else {
                staged.writes.push(write.clone());
                continue;
            };
            let earlier = staged.writes.iter_mut().find_map(|w| match w {
                Write::Insert(r) | Write::Update(r) if r.id == record.id => Some(r),
                _ => None,
            });
            match earlier {
                Some(earlier) => {
                    earlier.data = record.data.clone();
                    earlier.customer = record.customer.clone();
                    earlier.deleted = record.deleted;
                }
                None => staged.writes.push(write.clone()),
            }
        }
        Ok(())
    }

    /// The staged state of `id` in `account`, if this request wrote it.
    pub fn get(&self, account: &str, id: &str) -> Option<Record> {
        let staged = self.lock();
        if staged.account.as_deref() != Some(account) {
            return None;
        }
        staged.writes.iter().enumerate().find_map(|(n, w)| match w {
            Write::Insert(r) if r.id == id => Some(staged_insert(r, n)),
            Write::Update(r) if r.id == id => Some(r.clone()),
            _ => None,
        })
    }

    /// Remembers the version a decision was based on.
    pub fn note_read(&self, account: &str, record: &Record) {
        self.lock()
            .read
            .entry((account.to_owned(), record.id.clone()))
            .or_insert(record.version);
    }

    /// The staged objects of `query`'s type in `account`, as lists see them.
    fn staged_of(&self, account: &str, object: &str) -> Vec<Record> {
        let staged = self.lock();
        if staged.account.as_deref() != Some(account) {
            return Vec::new();
        }
        staged
            .writes
            .iter()
            .enumerate()
            .filter_map(|(n, w)| match w {
                Write::Insert(r) if r.object == object => Some(staged_insert(r, n)),
                Write::Update(r) if r.object == object => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// Merges the staged objects into a page the store returned for
    /// `query` (asked for `query.limit` + the staged count): staged
    /// versions replace stored ones, and the page keeps `query.limit`.
    pub fn overlay(&self, account: &str, query: &ListQuery, stored: Vec<Record>) -> Vec<Record> {
        let staged = self.staged_of(account, query.object);
        if staged.is_empty() {
            return stored;
        }
        let mut page: Vec<Record> = stored
            .into_iter()
            .filter(|r| !staged.iter().any(|s| s.id == r.id))
            .collect();
        page.extend(staged.into_iter().filter(|r| query.matches(r)));
        page.sort_by_key(|r| std::cmp::Reverse(r.seq));
        let limit = usize::try_from(query.limit).unwrap_or(0);
        if matches!(query.cursor, crate::store::Cursor::Before(_)) {
            // Paging backwards keeps the objects nearest the cursor.
            let skip = page.len().saturating_sub(limit);
            page.drain(..skip);
        } else {
            page.truncate(limit);
        }
        page
    }

    /// How many objects of a type are staged (lists ask the store for more).
    pub fn staged_count(&self, account: &str, object: &str) -> usize {
        self.staged_of(account, object).len()
    }

    fn take(&self) -> Staged {
        std::mem::take(&mut *self.lock())
    }
}

fn staged_insert(record: &Record, position: usize) -> Record {
    let mut record = record.clone();
    record.seq = STAGED_SEQ_BASE + position as i64;
    record
}

/// The layer every API request goes through: takes the idempotency key,
/// runs the handler (again, on a conflict), commits its writes with its
/// answer.
pub async fn run(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body, state.limits().body).await {
        Ok(bytes) => bytes,
        Err(err) => return err.into_response(),
    };
    let hold = match idempotency::claim(&state, &parts, &bytes).await {
        Ok(idempotency::Claimed::Run(hold)) => hold,
        Ok(idempotency::Claimed::Answered(response)) => return response,
        Err(err) => return err.into_response(),
    };
    let runs = run_until_committed(&state, &parts, &bytes, hold.as_ref(), next);
    let Some(hold) = hold.as_ref() else {
        return runs.await;
    };
    // A long request renews its hold, so only a dead one loses its key.
    tokio::pin!(runs);
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.tick().await;
    loop {
        tokio::select! {
            response = &mut runs => return response,
            _ = renew.tick() => idempotency::renew(&state, hold).await,
        }
    }
}

async fn run_until_committed(
    state: &AppState,
    parts: &Parts,
    bytes: &Bytes,
    hold: Option<&Hold>,
    next: Next,
) -> Response {
    for _ in 0..MAX_RUNS {
        let unit = Arc::new(UnitOfWork::default());
        let mut request = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
        request.extensions_mut().insert(unit.clone());
        let response = next.clone().run(request).await;
        let (head, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, MAX_BODY_BYTES * 64).await {
            Ok(body) => body,
            Err(err) => {
                return give_up(
                    state,
                    hold,
                    ApiError::Internal(format!("response body: {err}")),
                )
                .await;
            }
        };
        if head.status.is_server_error() {
            // Nothing of a failed request lands; its key is free again.
            idempotency::release(state, hold).await;
            return Response::from_parts(head, Body::from(body));
        }
        let staged = unit.take();
        if !head.status.is_success() && read_changed(state, &staged).await {
            // The refusal was decided on state another request has since
            // changed: decide again on the new state.
            continue;
        }
        let mut writes = staged.writes;
        if let Some(hold) = hold {
            writes.push(Write::Answer(Answer {
                account: hold.account.clone(),
                key: hold.key.clone(),
                request_id: hold.request_id.clone(),
                status: head.status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            }));
        }
        if writes.is_empty() {
            return Response::from_parts(head, Body::from(body));
        }
        let account = staged
            .account
            .or_else(|| hold.map(|h| h.account.clone()))
            .unwrap_or_default();
        match state.store().commit(&account, &writes).await {
            Ok(()) => {
                state.committed(&writes);
                return Response::from_parts(head, Body::from(body));
            }
            Err(StoreError::Conflict) => continue,
            Err(StoreError::ClaimLost) => return idempotency::claim_lost(hold),
            Err(err) => return give_up(state, hold, store_error(err)).await,
        }
    }
    give_up(state, hold, too_many_conflicts()).await
}

/// Whether an object the request read has changed since.
async fn read_changed(state: &AppState, staged: &Staged) -> bool {
    for ((account, id), version) in &staged.read {
        match state.store().get(account, id).await {
            Ok(Some(record)) if record.version == *version => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
    false
}

async fn give_up(state: &AppState, hold: Option<&Hold>, err: ApiError) -> Response {
    idempotency::release(state, hold).await;
    err.into_response()
}

fn too_many_conflicts() -> ApiError {
    ApiError::invalid("This object is being changed by many requests at once; retry the request.")
        .with_status(StatusCode::CONFLICT)
        .with_code("lock_timeout")
}

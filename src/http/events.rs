//! Writes: events recording changes (with `previous_attributes`), commits
//! staged in the request's unit of work, optimistic read-modify-write
//! retried on version conflicts, and store errors as API errors.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::http::ctx::Ctx;
use crate::http::error::{ApiError, ApiResult, store_error};
use crate::http::state::API_VERSION;
use crate::store::{Record, StoreError, Write};

impl Ctx {
    /// An event recording a change, to be committed with the change itself.
    pub fn event(&self, kind: &str, object: &Value, previous: Option<Value>) -> Write {
        let mut data = json!({ "object": self.strip_hidden(object.clone()) });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let event = json!({
            "id": crate::core::event_types::SPEC.new_id(),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": false,
            "pending_webhooks": 0,
            "request": {
                "id": (!self.request_id.is_empty()).then_some(&self.request_id),
                "idempotency_key": self.idempotency_key,
            },
            "type": kind,
        });
        let mut record = Record::new("event", event);
        // Lists of a customer's objects must not pick events up.
        record.customer = None;
        // A test clock's events show its time; they are kept (and listed
        // within Stripe's 30 days) by the real time they happened at.
        if self.test_clock().is_some() {
            record.created = self.state.clock().now();
        }
        Write::Insert(record)
    }

    /// Writes `record` back as `doc`, with a `kind` event whose
    /// `previous_attributes` say what visibly changed (no event when
    /// nothing did).
    pub fn update_with_event(&self, record: &Record, doc: Value, kind: &str) -> Vec<Write> {
        let before = self.strip_hidden(record.data.clone());
        let after = self.strip_hidden(doc.clone());
        let mut writes = Vec::with_capacity(2);
        if before != after {
            writes.push(self.event(kind, &doc, Some(previous_attributes(&before, &after))));
        }
        writes.insert(0, Write::Update(record.with_data(doc)));
        writes
    }

    /// Commits writes: in an API request, stages them for the request's
    /// one transaction; elsewhere, at once.
    pub async fn commit(&self, writes: &[Write]) -> ApiResult<()> {
        if let Some(unit) = &self.unit {
            return unit.stage(&self.account, writes);
        }
        self.store()
            .commit(&self.account, writes)
            .await
            .map_err(store_error)?;
        self.state.committed(writes);
        Ok(())
    }

    /// Read-modify-write with optimistic concurrency: `change` sees the
    /// current record and returns the writes to commit; when another request
    /// changed the object meanwhile, it runs again on the fresh state.
    pub async fn mutate<T>(
        &self,
        object: &str,
        id: &str,
        param: &str,
        mut change: impl FnMut(Record) -> ApiResult<(Vec<Write>, T)>,
    ) -> ApiResult<T> {
        // A Mutex, not a RefCell, keeps the step's future Send.
        let change = std::sync::Mutex::new(&mut change);
        self.retry(|| {
            let change = &change;
            async move {
                let record = self.load(object, id, param).await?;
                let mut change = change.lock().unwrap_or_else(|e| e.into_inner());
                (*change)(record)
            }
        })
        .await
    }

    /// Runs a read-decide-write step until its writes commit: when another
    /// request changed one of the objects it read (a version conflict), it
    /// reads again and decides again, so of two racing transitions exactly
    /// one happens and the other sees the new state.
    pub async fn retry<T, Step, Fut>(&self, mut step: Step) -> ApiResult<T>
    where
        Step: FnMut() -> Fut,
        Fut: Future<Output = ApiResult<(Vec<Write>, T)>>,
    {
        if let Some(unit) = &self.unit {
            // The request's unit of work runs the whole request again on a
            // conflict, this step included.
            let (writes, out) = step().await?;
            unit.stage(&self.account, &writes)?;
            return Ok(out);
        }
        for _ in 0..8 {
            let (writes, out) = step().await?;
            match self.store().commit(&self.account, &writes).await {
                Ok(()) => {
                    self.state.committed(&writes);
                    return Ok(out);
                }
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(store_error(err)),
            }
        }
        Err(ApiError::invalid(
            "This object is being changed by many requests at once; retry the request.",
        )
        .with_status(StatusCode::CONFLICT)
        .with_code("lock_timeout"))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        store_error(err)
    }
}

/// The previous values of every field `after` changed: Stripe's
/// `previous_attributes` (nested hashes list only their changed keys).
pub fn previous_attributes(before: &Value, after: &Value) -> Value {
    let (Value::Object(old), Value::Object(new)) = (before, after) else {
        return before.clone();
    };
    let mut changed = serde_json::Map::new();
    for (key, new_value) in new {
        let old_value = old.get(key).unwrap_or(&Value::Null);
        if old_value == new_value {
            continue;
        }
        let previous = match (old_value, new_value) {
            (Value::Object(_), Value::Object(_)) => previous_attributes(old_value, new_value),
            _ => old_value.clone(),
        };
        changed.insert(key.clone(), previous);
    }
    for (key, old_value) in old {
        if !new.contains_key(key) {
            changed.insert(key.clone(), old_value.clone());
        }
    }
    Value::Object(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_lists_changed_fields_only() {
        let before = json!({"name": "a", "email": "x", "metadata": {"k": "1", "same": "s"}, "address": null});
        let after = json!({"name": "b", "email": "x", "metadata": {"k": "2", "same": "s", "new": "n"}, "address": {"city": "P"}});
        assert_eq!(
            previous_attributes(&before, &after),
            json!({"name": "a", "metadata": {"k": "1", "new": null}, "address": null})
        );
    }
}

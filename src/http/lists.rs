//! Lists and search: the paging parameters every list endpoint takes,
//! pages of embedded lists, and the list and search answers of [`Ctx`].

use axum::Json;
use serde_json::{Value, json};

use crate::http::ctx::Ctx;
use crate::http::error::{ApiError, ApiResult};
use crate::http::params::Params;
use crate::http::search;
use crate::store::{Cursor, ListQuery, Range};

/// Paging parameters shared by every list endpoint.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub limit: i64,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
    pub created: Range,
}

impl ListParams {
    pub fn take(params: &mut Params) -> ApiResult<Self> {
        let limit = params.int("limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid_param(
                "limit",
                format!("Invalid limit: must be between 1 and 100 (you sent {limit})"),
            ));
        }
        let starting_after = params.string("starting_after")?;
        let ending_before = params.string("ending_before")?;
        if starting_after.is_some() && ending_before.is_some() {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
            .with_code("parameters_exclusive")
            .with_param("ending_before"));
        }
        let created = take_range(params, "created")?.unwrap_or_default();
        Ok(Self {
            limit,
            starting_after,
            ending_before,
            created,
        })
    }
}

/// One page of a list embedded in an object (an invoice's lines, a Checkout
/// Session's line items), in its stored order: the items and `has_more`.
pub fn page_of_embedded(items: &[Value], paging: &ListParams) -> ApiResult<(Vec<Value>, bool)> {
    let position = |id: &str, param: &str| {
        items
            .iter()
            .position(|item| item["id"] == json!(id))
            .ok_or_else(|| ApiError::no_such("line_item", id, param))
    };
    let limit = paging.limit as usize;
    let (start, end) = match (&paging.starting_after, &paging.ending_before) {
        (Some(after), _) => {
            let start = position(after, "starting_after")? + 1;
            (start, (start + limit).min(items.len()))
        }
        (_, Some(before)) => {
            let end = position(before, "ending_before")?;
            (end.saturating_sub(limit), end)
        }
        _ => (0, limit.min(items.len())),
    };
    let has_more = match &paging.ending_before {
        Some(_) => start > 0,
        None => end < items.len(),
    };
    Ok((items[start.min(end)..end].to_vec(), has_more))
}

/// `key=N` or `key[gt|gte|lt|lte]=N`.
pub fn take_range(params: &mut Params, key: &str) -> ApiResult<Option<Range>> {
    if !params.contains(key) {
        return Ok(None);
    }
    if params.is_map(key) {
        let mut bounds = params.object(key)?.expect("checked above");
        let range = Range {
            gt: bounds.int("gt")?,
            gte: bounds.int("gte")?,
            lt: bounds.int("lt")?,
            lte: bounds.int("lte")?,
        };
        bounds.finish()?;
        return Ok(Some(range));
    }
    let exact = params.int(key)?;
    Ok(exact.map(|t| Range {
        gte: Some(t),
        lte: Some(t),
        ..Range::default()
    }))
}

impl Ctx {
    /// Runs a list query with the request's paging, answering a list object.
    pub async fn list(
        &self,
        mut query: ListQuery,
        paging: &ListParams,
        url: &str,
    ) -> ApiResult<Json<Value>> {
        query.created = paging.created;
        query.limit = paging.limit + 1;
        query.cursor = match (&paging.starting_after, &paging.ending_before) {
            (Some(id), _) => Cursor::After(
                self.cursor_position(query.object, id, "starting_after")
                    .await?,
            ),
            (_, Some(id)) => Cursor::Before(
                self.cursor_position(query.object, id, "ending_before")
                    .await?,
            ),
            _ => Cursor::Start,
        };
        let mut records = self.list_records(&query).await?;
        let has_more = records.len() as i64 > paging.limit;
        if has_more {
            match query.cursor {
                // Paging backwards, the extra record is the newest one: first.
                Cursor::Before(_) => {
                    records.remove(0);
                }
                _ => {
                    records.pop();
                }
            }
        }
        let data: Vec<Value> = records.into_iter().map(|r| r.data).collect();
        self.respond(json!({
            "object": "list",
            "data": data,
            "has_more": has_more,
            "url": url,
        }))
        .await
    }

    /// `GET /v1/<resource>/search`: takes `query`, `limit` and `page`,
    /// checks the query against the resource's fields and runs it.
    pub async fn search_resource(
        &self,
        mut params: Params,
        spec: &search::Spec,
    ) -> ApiResult<Json<Value>> {
        let query = params.required_string("query")?;
        let limit = params.int("limit")?.unwrap_or(10);
        let page = params.string("page")?;
        params.finish()?;
        let query = spec.query(&query)?;
        self.search(spec.object, &query, limit, page.as_deref(), spec.url)
            .await
    }

    /// Runs a search over one object type, newest first, with Stripe's
    /// `page`/`next_page` paging.
    pub async fn search(
        &self,
        object: &'static str,
        query: &search::Query,
        limit: i64,
        page: Option<&str>,
        url: &str,
    ) -> ApiResult<Json<Value>> {
        const BATCH: i64 = 500;
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid_param(
                "limit",
                format!("Invalid limit: must be between 1 and 100 (you sent {limit})"),
            ));
        }
        let mut cursor = match page {
            None => Cursor::Start,
            Some(token) => Cursor::After(
                token
                    .strip_prefix("page_")
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        ApiError::invalid_param("page", format!("Invalid page: {token}"))
                    })?,
            ),
        };
        let mut matched = Vec::new();
        'scan: loop {
            let mut batch_query = ListQuery::new(object);
            for field in crate::store::FOLDED_INDEXES {
                // An indexed exact match narrows the scan to its candidates.
                if let Some(text) = query.required_text(field).filter(|t| t.is_ascii()) {
                    batch_query.filters.push(crate::store::Filter::Folded(
                        field,
                        text.to_ascii_lowercase(),
                    ));
                }
            }
            batch_query.cursor = cursor;
            batch_query.limit = BATCH;
            let batch = self.list_records(&batch_query).await?;
            let exhausted = (batch.len() as i64) < BATCH;
            for record in batch {
                cursor = Cursor::After(record.seq);
                if query.matches(&record.data) {
                    matched.push(record);
                    if matched.len() as i64 > limit {
                        break 'scan;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        let has_more = matched.len() as i64 > limit;
        matched.truncate(limit as usize);
        let next_page = has_more.then(|| format!("page_{}", matched.last().map_or(0, |r| r.seq)));
        self.respond(json!({
            "object": "search_result",
            "data": matched.into_iter().map(|r| r.data).collect::<Vec<_>>(),
            "has_more": has_more,
            "next_page": next_page,
            "url": url,
        }))
        .await
    }

    async fn cursor_position(&self, object: &str, id: &str, param: &str) -> ApiResult<i64> {
        match self.get(id).await? {
            Some(record) if record.object == object => {}
            _ => return Err(ApiError::no_such(self.display_name(object), id, param)),
        }
        self.store()
            .position(&self.account, id)
            .await?
            .ok_or_else(|| ApiError::no_such(self.display_name(object), id, param))
    }
}

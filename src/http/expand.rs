//! `expand[]`: replacing the IDs an object points at with the objects, up to
//! four levels deep, and showing the fields Stripe includes only on request.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use axum::Json;

use crate::core::registry::{Expansion, Registry};
use crate::http::ctx::Ctx;
use crate::http::error::{ApiError, ApiResult};
use crate::store::Owner;

pub const MAX_EXPAND_DEPTH: usize = 4;

/// The object as shown when nothing is expanded (also what events carry).
pub fn strip_hidden(registry: &Registry, value: Value) -> Value {
    strip_hidden_except(registry, value, &[])
}

impl Ctx {
    /// The object as shown when nothing is expanded.
    pub fn strip_hidden(&self, value: Value) -> Value {
        strip_hidden(self.registry(), value)
    }

    /// Answers with an object after applying the request's `expand[]`.
    pub async fn respond(&self, mut value: Value) -> ApiResult<Json<Value>> {
        expand(self, &mut value, &self.expand).await?;
        Ok(Json(value))
    }

    /// Refuses, before anything is written, `expand[]` paths whose first
    /// step an `object` does not have (deeper steps are checked when the
    /// answer is expanded).
    pub fn check_expand_paths(&self, object: &str) -> ApiResult<()> {
        for path in &self.expand {
            let segments: Vec<&str> = path.split('.').collect();
            let known = (1..=segments.len()).any(|n| {
                self.registry()
                    .expansion(object, &segments[..n].join("."))
                    .is_some()
            });
            if !known {
                return Err(cannot_expand(path));
            }
        }
        Ok(())
    }
}

fn strip_hidden_except(registry: &Registry, mut value: Value, keep: &[&str]) -> Value {
    let spec = value["object"].as_str().and_then(|o| registry.get(o));
    if let Value::Object(map) = &mut value {
        // `_`-prefixed keys are stripe-twin's own bookkeeping, never shown.
        map.retain(|key, _| !key.starts_with('_'));
        for field in spec.into_iter().flat_map(|spec| spec.hidden_fields()) {
            if !keep.contains(&field) {
                map.remove(field);
            }
        }
    }
    value
}

fn cannot_expand(path: &str) -> ApiError {
    ApiError::invalid_param(
        "expand",
        format!("This property cannot be expanded ({path})."),
    )
}

/// At most this many distinct `expand[]` paths in one request.
pub const MAX_EXPAND_PATHS: usize = 32;

/// Applies every `expand[]` path to a response (an object or a list).
pub async fn expand(ctx: &Ctx, value: &mut Value, paths: &[String]) -> ApiResult<()> {
    let paths = distinct(paths)?;
    let is_list = matches!(value["object"].as_str(), Some("list" | "search_result"));
    for path in &paths {
        let segments: Vec<&str> = path.split('.').collect();
        // `data` steps into a list; only properties count as levels.
        let levels = segments.iter().filter(|s| **s != "data").count();
        if levels > MAX_EXPAND_DEPTH {
            return Err(ApiError::invalid_param(
                "expand",
                format!("You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property."),
            ));
        }
        if segments.iter().any(|s| s.is_empty()) {
            return Err(cannot_expand(path));
        }
        expand_path(ctx, value, &segments, path).await?;
    }
    // Hidden fields stay only where a path asked for them.
    let keep_for = |prefix: &str| -> Vec<&str> {
        paths
            .iter()
            .filter_map(|p| p.strip_prefix(prefix))
            .filter_map(|p| p.split('.').next())
            .collect()
    };
    if is_list {
        let keep = keep_for("data.");
        if let Some(items) = value["data"].as_array_mut() {
            for item in items {
                *item = strip_hidden_except(ctx.registry(), item.take(), &keep);
            }
        }
    } else {
        let keep = keep_for("");
        *value = strip_hidden_except(ctx.registry(), value.take(), &keep);
    }
    Ok(())
}

/// The paths, each once, refused beyond [`MAX_EXPAND_PATHS`].
fn distinct(paths: &[String]) -> ApiResult<Vec<&str>> {
    let mut unique: Vec<&str> = Vec::new();
    for path in paths {
        if !unique.contains(&path.as_str()) {
            unique.push(path);
        }
    }
    if unique.len() > MAX_EXPAND_PATHS {
        return Err(ApiError::invalid_param(
            "expand",
            format!(
                "You cannot expand more than {MAX_EXPAND_PATHS} different properties in one request (you sent {}).",
                unique.len()
            ),
        ));
    }
    Ok(unique)
}

/// What one level of a path does to the objects it reaches: the slots
/// (JSON pointers) of references to load and of lists to build, and the
/// objects to walk on from, each with the segment its next step starts at.
#[derive(Default)]
struct Level {
    /// (slot, id, next): IDs to replace with their objects.
    references: Vec<(String, String, usize)>,
    /// (slot, owner id, what to list, next): embedded lists to build.
    lists: Vec<(String, String, Expansion, usize)>,
    /// (next, slot): objects reached without loading anything.
    onward: Vec<(usize, String)>,
}

/// Expands one path over every object it reaches, a level at a time, so
/// each level over a list page costs one query, not one per object.
async fn expand_path(ctx: &Ctx, root: &mut Value, segments: &[&str], full: &str) -> ApiResult<()> {
    // Segment index → the objects (JSON pointers) whose step starts there.
    let mut work: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    work.insert(0, vec![String::new()]);
    while let Some((at, nodes)) = work.pop_first() {
        if at >= segments.len() {
            continue;
        }
        let level = plan_level(ctx.registry(), root, &nodes, segments, at, full)?;
        let mut reached = level.onward;
        load_references(ctx, root, &level.references, segments, full).await?;
        for (slot, _, next) in level.references {
            if root.pointer(&slot).is_some_and(Value::is_object) {
                reached.push((next, slot));
            }
        }
        build_lists(ctx, root, &level.lists).await?;
        reached.extend(
            level
                .lists
                .into_iter()
                .map(|(slot, _, _, next)| (next, slot)),
        );
        for (next, slot) in reached {
            work.entry(next).or_default().push(slot);
        }
    }
    Ok(())
}

/// Finds, for each object at segment `at`, what the path's next step is.
fn plan_level(
    registry: &Registry,
    root: &mut Value,
    nodes: &[String],
    segments: &[&str],
    at: usize,
    full: &str,
) -> ApiResult<Level> {
    let mut level = Level::default();
    for pointer in nodes {
        let Some(node) = root.pointer_mut(pointer).filter(|n| n.is_object()) else {
            continue;
        };
        if matches!(node["object"].as_str(), Some("list" | "search_result")) {
            if segments[at] != "data" {
                return Err(cannot_expand(full));
            }
            let count = node["data"].as_array().map_or(0, Vec::len);
            level
                .onward
                .extend((0..count).map(|k| (at + 1, format!("{pointer}/data/{k}"))));
            continue;
        }
        let object = node["object"].as_str().unwrap_or_default().to_owned();
        let rest = &segments[at..];
        let (taken, kind) = (1..=rest.len())
            .find_map(|n| {
                registry
                    .expansion(&object, &rest[..n].join("."))
                    .map(|k| (n, k))
            })
            .ok_or_else(|| cannot_expand(full))?;
        let next = at + taken;
        let owner = node["id"].as_str().unwrap_or_default().to_owned();
        let is_list = matches!(kind, Expansion::Related { .. } | Expansion::Children { .. });
        if is_list && node.get(rest[0]).is_none() {
            node[rest[0]] = Value::Null;
        }
        let slot = format!("{pointer}/{}", rest[..taken].join("/"));
        // A missing or null parent leaves nothing to expand.
        let Some(field) = root.pointer(&slot) else {
            continue;
        };
        match kind {
            Expansion::Reference { .. } => match field {
                Value::String(id) => level.references.push((slot, id.clone(), next)),
                // Expanded by an earlier path: walk on through it.
                Value::Object(_) => level.onward.push((next, slot)),
                _ => {}
            },
            Expansion::Hidden | Expansion::Embedded { .. } => {
                if field.is_object() {
                    level.onward.push((next, slot));
                }
            }
            Expansion::Related { .. } | Expansion::Children { .. } => {
                level.lists.push((slot, owner, kind, next));
            }
        }
    }
    Ok(level)
}

/// Replaces the IDs of one level with their objects, loaded in one query.
async fn load_references(
    ctx: &Ctx,
    root: &mut Value,
    references: &[(String, String, usize)],
    segments: &[&str],
    full: &str,
) -> ApiResult<()> {
    if references.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = references.iter().map(|(_, id, _)| id.clone()).collect();
    let records: HashMap<String, Value> = ctx
        .get_many(&ids)
        .await?
        .into_iter()
        .map(|r| (r.id, r.data))
        .collect();
    for (slot, id, next) in references {
        let (Some(data), Some(target)) = (records.get(id), root.pointer_mut(slot)) else {
            continue;
        };
        // Keep the hidden fields that any requested path reaches through
        // this object, not only this path's next step.
        let walked = segments[..*next].join(".");
        let keep: Vec<&str> = ctx
            .expand
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(full))
            .filter_map(|p| p.strip_prefix(walked.as_str())?.strip_prefix('.'))
            .filter_map(|p| p.split('.').next())
            .collect();
        *target = strip_hidden_except(ctx.registry(), data.clone(), &keep);
    }
    Ok(())
}

/// The first page (10) of each list of one level, in one query per kind.
async fn build_lists(
    ctx: &Ctx,
    root: &mut Value,
    lists: &[(String, String, Expansion, usize)],
) -> ApiResult<()> {
    let mut kinds: Vec<Expansion> = Vec::new();
    for (_, _, kind, _) in lists {
        if !kinds.contains(kind) {
            kinds.push(*kind);
        }
    }
    for kind in kinds {
        let (object, owner) = match kind {
            Expansion::Related { object, .. } => (object, Owner::Customer),
            Expansion::Children { object, field, .. } => (object, Owner::Field(field)),
            _ => continue,
        };
        let mine: Vec<_> = lists.iter().filter(|(_, _, k, _)| *k == kind).collect();
        let owners: Vec<String> = mine.iter().map(|(_, o, _, _)| o.clone()).collect();
        let records = ctx.list_per_owner(object, owner, &owners, 11).await?;
        for (slot, owner_id, _, _) in mine {
            let data: Vec<Value> = records
                .iter()
                .filter(|r| owner.of(r) == Some(owner_id.as_str()))
                .take(11)
                .map(|r| strip_hidden(ctx.registry(), r.data.clone()))
                .collect();
            let url = match kind {
                Expansion::Related { url_suffix, .. } => {
                    format!("/v1/customers/{owner_id}/{url_suffix}")
                }
                Expansion::Children { url, .. } => url.replace("{id}", owner_id),
                _ => String::new(),
            };
            if let Some(target) = root.pointer_mut(slot) {
                let has_more = data.len() > 10;
                *target = json!({
                    "object": "list",
                    "data": data.into_iter().take(10).collect::<Vec<_>>(),
                    "has_more": has_more,
                    "url": url,
                });
            }
        }
    }
    Ok(())
}

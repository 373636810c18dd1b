//! Typed, validating access to decoded request parameters.
//!
//! Handlers take what they understand and then call `finish`, which answers
//! any parameter left over with Stripe's `parameter_unknown` error. Every
//! error names the parameter the way the client sent it (`address[city]`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::http::error::{ApiError, ApiResult};
use crate::http::form::Node;

pub const METADATA_MAX_KEYS: usize = 50;
pub const METADATA_MAX_KEY_LEN: usize = 40;
pub const METADATA_MAX_VALUE_LEN: usize = 500;

#[derive(Debug, Default, Clone)]
pub struct Params {
    prefix: Option<String>,
    map: BTreeMap<String, Node>,
}

/// An update that may also unset: absent, set to a value, or cleared with `""`.
#[derive(Debug, Clone, PartialEq)]
pub enum Update<T> {
    Set(T),
    Unset,
}

/// A text parameter that may be emptied: its value, or null for "".
pub fn nullable_text(value: Option<Update<String>>) -> Option<Value> {
    value.map(|u| match u {
        Update::Set(s) => Value::String(s),
        Update::Unset => Value::Null,
    })
}

const ADDRESS_FIELDS: [&str; 6] = ["city", "country", "line1", "line2", "postal_code", "state"];

/// An `address` hash (city, country, line1, line2, postal_code, state),
/// each field set, emptied or null.
pub fn address(mut params: Params) -> ApiResult<Value> {
    let mut address = serde_json::Map::new();
    for field in ADDRESS_FIELDS {
        let value = nullable_text(params.nullable_string(field)?).unwrap_or(Value::Null);
        address.insert(field.to_owned(), value);
    }
    params.finish()?;
    Ok(Value::Object(address))
}

impl Params {
    pub fn new(map: BTreeMap<String, Node>) -> Self {
        Self { prefix: None, map }
    }

    fn nested(prefix: String, map: BTreeMap<String, Node>) -> Self {
        Self {
            prefix: Some(prefix),
            map,
        }
    }

    /// The full bracketed name of `key` in this (possibly nested) group.
    /// Where these parameters sit in the request (`line_items[0]`), if nested.
    pub fn path(&self) -> &str {
        self.prefix.as_deref().unwrap_or_default()
    }

    pub fn name(&self, key: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}[{key}]"),
            None => key.to_owned(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn is_map(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(Node::Map(_)))
    }

    pub fn take_node(&mut self, key: &str) -> Option<Node> {
        self.map.remove(key)
    }

    /// Answers the first parameter nobody took as unknown.
    pub fn finish(self) -> ApiResult<()> {
        match self.map.keys().next() {
            Some(key) => Err(ApiError::unknown_param(&self.name(key))),
            None => Ok(()),
        }
    }

    fn scalar(&self, key: &str, node: Node) -> ApiResult<String> {
        match node {
            Node::Str(s) => Ok(s),
            _ => Err(ApiError::invalid_param(
                self.name(key),
                format!(
                    "Invalid string: {} must be a single value, not a hash or an array",
                    self.name(key)
                ),
            )),
        }
    }

    fn empty_not_allowed(&self, key: &str) -> ApiError {
        let name = self.name(key);
        ApiError::invalid_param(
            &name,
            format!(
                "You passed an empty string for '{name}'. We assume empty values are an attempt to unset a parameter; however '{name}' cannot be unset. You should remove '{name}' from your request or supply a non-empty value."
            ),
        )
        .with_code("parameter_invalid_empty")
    }

    /// A plain string parameter, left in place for whoever takes it.
    pub fn peek_str(&self, key: &str) -> Option<&str> {
        match self.map.get(key) {
            Some(crate::http::form::Node::Str(value)) => Some(value),
            _ => None,
        }
    }

    /// A string that may not be empty.
    pub fn string(&mut self, key: &str) -> ApiResult<Option<String>> {
        match self.take_node(key) {
            None => Ok(None),
            Some(node) => {
                let value = self.scalar(key, node)?;
                if value.is_empty() {
                    return Err(self.empty_not_allowed(key));
                }
                Ok(Some(value))
            }
        }
    }

    pub fn required_string(&mut self, key: &str) -> ApiResult<String> {
        self.string(key)?
            .ok_or_else(|| ApiError::missing_param(&self.name(key)))
    }

    /// A string where `""` unsets the field.
    pub fn nullable_string(&mut self, key: &str) -> ApiResult<Option<Update<String>>> {
        match self.take_node(key) {
            None => Ok(None),
            Some(node) => {
                let value = self.scalar(key, node)?;
                Ok(Some(if value.is_empty() {
                    Update::Unset
                } else {
                    Update::Set(value)
                }))
            }
        }
    }

    pub fn bool(&mut self, key: &str) -> ApiResult<Option<bool>> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        match value.as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(ApiError::invalid_param(
                self.name(key),
                format!("Invalid boolean: {value}"),
            )),
        }
    }

    pub fn int(&mut self, key: &str) -> ApiResult<Option<i64>> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        value.parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid_param(self.name(key), format!("Invalid integer: {value}"))
                .with_code("parameter_invalid_integer")
        })
    }

    /// An integer within `min..=max`.
    pub fn int_in(&mut self, key: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        let value = self.int(key)?;
        if let Some(v) = value
            && !(min..=max).contains(&v)
        {
            return Err(ApiError::invalid_param(
                self.name(key),
                format!(
                    "Invalid {}: must be between {min} and {max}",
                    self.name(key)
                ),
            ));
        }
        Ok(value)
    }

    pub fn enum_value(&mut self, key: &str, allowed: &[&str]) -> ApiResult<Option<String>> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        self.check_enum(key, &value, allowed)?;
        Ok(Some(value))
    }

    /// An enum where `""` unsets the field.
    pub fn nullable_enum(
        &mut self,
        key: &str,
        allowed: &[&str],
    ) -> ApiResult<Option<Update<String>>> {
        let value = self.nullable_string(key)?;
        if let Some(Update::Set(v)) = &value {
            self.check_enum(key, v, allowed)?;
        }
        Ok(value)
    }

    pub fn check_enum(&self, key: &str, value: &str, allowed: &[&str]) -> ApiResult<()> {
        if allowed.contains(&value) {
            return Ok(());
        }
        Err(ApiError::invalid_param(
            self.name(key),
            format!(
                "Invalid {}: must be one of {}",
                self.name(key),
                one_of(allowed)
            ),
        ))
    }

    /// A hash of parameters (`key[a]=..`).
    pub fn object(&mut self, key: &str) -> ApiResult<Option<Params>> {
        match self.take_node(key) {
            None => Ok(None),
            Some(Node::Map(map)) => Ok(Some(Params::nested(self.name(key), map))),
            Some(Node::Str(s)) if s.is_empty() => Err(self.empty_not_allowed(key)),
            Some(_) => Err(ApiError::invalid_param(self.name(key), "Invalid object")),
        }
    }

    /// A hash where `key=` (empty) unsets the whole field.
    pub fn nullable_object(&mut self, key: &str) -> ApiResult<Option<Update<Params>>> {
        match self.take_node(key) {
            None => Ok(None),
            Some(Node::Map(map)) => Ok(Some(Update::Set(Params::nested(self.name(key), map)))),
            Some(Node::Str(s)) if s.is_empty() => Ok(Some(Update::Unset)),
            Some(_) => Err(ApiError::invalid_param(self.name(key), "Invalid object")),
        }
    }

    /// An array: `key[]=..` or `key[0]=..` (indexed maps are arrays here).
    /// Each element comes with its bracketed name for error messages.
    pub fn list(&mut self, key: &str) -> ApiResult<Option<Vec<(String, Node)>>> {
        let name = self.name(key);
        match self.take_node(key) {
            None => Ok(None),
            Some(Node::List(items)) => Ok(Some(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| (format!("{name}[{i}]"), n))
                    .collect(),
            )),
            Some(Node::Map(map)) => {
                let mut indexed = Vec::with_capacity(map.len());
                for (k, node) in map {
                    let index: usize = k.parse().map_err(|_| {
                        ApiError::invalid_param(&name, format!("Invalid array: {name}"))
                    })?;
                    indexed.push((index, node));
                }
                indexed.sort_by_key(|(i, _)| *i);
                Ok(Some(
                    indexed
                        .into_iter()
                        .map(|(i, n)| (format!("{name}[{i}]"), n))
                        .collect(),
                ))
            }
            // `key=` sends an empty list, as Stripe's SDKs do to clear arrays.
            Some(Node::Str(s)) if s.is_empty() => Ok(Some(Vec::new())),
            Some(Node::Str(_)) => Err(ApiError::invalid_param(
                &name,
                format!("Invalid array: {name} must be an array"),
            )),
        }
    }

    pub fn string_list(&mut self, key: &str) -> ApiResult<Option<Vec<String>>> {
        let Some(items) = self.list(key)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|(name, node)| match node {
                Node::Str(s) => Ok(s),
                _ => Err(ApiError::invalid_param(
                    &name,
                    format!("Invalid string: {name} must be a single value"),
                )),
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    /// Each element of a list of hashes as its own `Params`.
    pub fn object_list(&mut self, key: &str) -> ApiResult<Option<Vec<Params>>> {
        let Some(items) = self.list(key)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|(name, node)| match node {
                Node::Map(map) => Ok(Params::nested(name, map)),
                _ => Err(ApiError::invalid_param(&name, "Invalid object")),
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    pub fn metadata(&mut self) -> ApiResult<Option<MetadataUpdate>> {
        let name = self.name("metadata");
        match self.take_node("metadata") {
            None => Ok(None),
            Some(Node::Str(s)) if s.is_empty() => Ok(Some(MetadataUpdate {
                clear: true,
                changes: Vec::new(),
            })),
            Some(Node::Map(map)) => {
                let mut changes = Vec::with_capacity(map.len());
                for (k, node) in map {
                    let Node::Str(v) = node else {
                        return Err(ApiError::invalid_param(
                            format!("{name}[{k}]"),
                            format!("Invalid string: {name}[{k}] must be a single value"),
                        ));
                    };
                    if k.chars().count() > METADATA_MAX_KEY_LEN {
                        return Err(ApiError::invalid_param(
                            format!("{name}[{k}]"),
                            format!(
                                "Metadata keys can have up to {METADATA_MAX_KEY_LEN} characters, but you passed in a key with {} characters.",
                                k.chars().count()
                            ),
                        ));
                    }
                    if v.chars().count() > METADATA_MAX_VALUE_LEN {
                        return Err(ApiError::invalid_param(
                            format!("{name}[{k}]"),
                            format!(
                                "Metadata values can have up to {METADATA_MAX_VALUE_LEN} characters, but you passed in a value with {} characters.",
                                v.chars().count()
                            ),
                        ));
                    }
                    changes.push((k, (!v.is_empty()).then_some(v)));
                }
                Ok(Some(MetadataUpdate {
                    clear: false,
                    changes,
                }))
            }
            Some(_) => Err(ApiError::invalid_param(&name, "Invalid object")),
        }
    }
}

/// Field changes parsed from parameters, applied to an object's document
/// (possibly more than once, when an optimistic write must be retried).
#[derive(Debug, Clone, Default)]
pub struct Patch {
    sets: Vec<(Vec<&'static str>, Value)>,
    /// Top-level fields to take out (ones Stripe shows only while set).
    removes: Vec<&'static str>,
    metadata: Option<MetadataUpdate>,
}

impl Patch {
    pub fn set(&mut self, path: &[&'static str], value: Value) {
        self.sets.push((path.to_vec(), value));
    }

    /// Takes a top-level field out of the document.
    pub fn remove(&mut self, field: &'static str) {
        self.removes.push(field);
    }

    pub fn set_metadata(&mut self, update: Option<MetadataUpdate>) {
        self.metadata = update;
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty() && self.removes.is_empty() && self.metadata.is_none()
    }

    /// Whether the patch sets `field` (a top-level field) or inside it.
    pub fn touches(&self, field: &str) -> bool {
        self.sets
            .iter()
            .any(|(path, _)| path.first() == Some(&field))
            || self.removes.contains(&field)
    }

    pub fn apply(&self, doc: &mut Value) -> ApiResult<()> {
        for (path, value) in &self.sets {
            let (last, parents) = path.split_last().expect("paths are not empty");
            let mut slot = &mut *doc;
            for key in parents {
                if !slot[*key].is_object() {
                    slot[*key] = Value::Object(Map::new());
                }
                slot = &mut slot[*key];
            }
            slot[*last] = value.clone();
        }
        if let Value::Object(map) = doc {
            for field in &self.removes {
                map.remove(*field);
            }
        }
        if let Some(metadata) = &self.metadata {
            metadata.apply(&mut doc["metadata"])?;
        }
        Ok(())
    }
}

/// `metadata=` clears all keys; `metadata[k]=` removes k; others set.
#[derive(Debug, Clone)]
pub struct MetadataUpdate {
    clear: bool,
    changes: Vec<(String, Option<String>)>,
}

impl MetadataUpdate {
    pub fn apply(&self, target: &mut Value) -> ApiResult<()> {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        let map = target.as_object_mut().expect("metadata is an object");
        if self.clear {
            map.clear();
        }
        for (k, v) in &self.changes {
            match v {
                Some(v) => map.insert(k.clone(), Value::String(v.clone())),
                None => map.remove(k),
            };
        }
        if map.len() > METADATA_MAX_KEYS {
            return Err(ApiError::invalid_param(
                "metadata",
                format!(
                    "Invalid metadata: Metadata can have up to {METADATA_MAX_KEYS} keys, but you passed in {} keys.",
                    map.len()
                ),
            ));
        }
        Ok(())
    }
}

/// "a", "a or b", "a, b, or c": how Stripe lists the allowed values.
pub fn one_of(allowed: &[&str]) -> String {
    match allowed {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [a, b] => format!("{a} or {b}"),
        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::form::decode;

    fn params(input: &str) -> Params {
        Params::new(decode(input.as_bytes()).unwrap())
    }

    #[test]
    fn typed_access_and_unknowns() {
        let mut p =
            params("name=Jo&balance=12&address[city]=Paris&address[zip]=1&tags[1]=b&tags[0]=a");
        assert_eq!(p.string("name").unwrap().as_deref(), Some("Jo"));
        assert_eq!(p.int("balance").unwrap(), Some(12));
        assert_eq!(p.string_list("tags").unwrap().unwrap(), vec!["a", "b"]);
        let mut address = p.object("address").unwrap().unwrap();
        assert_eq!(address.string("city").unwrap().as_deref(), Some("Paris"));
        let err = address.finish().unwrap_err();
        assert_eq!(err.body()["error"]["param"], "address[zip]");
        assert_eq!(err.body()["error"]["code"], "parameter_unknown");
        p.finish().unwrap();
    }

    #[test]
    fn invalid_values_name_the_param() {
        let mut p = params("balance=abc&flag=yes&kind=z&empty=");
        let err = p.int("balance").unwrap_err().body();
        assert_eq!(err["error"]["code"], "parameter_invalid_integer");
        assert_eq!(err["error"]["message"], "Invalid integer: abc");
        assert!(p.bool("flag").is_err());
        let err = p.enum_value("kind", &["a", "b", "c"]).unwrap_err().body();
        assert_eq!(
            err["error"]["message"],
            "Invalid kind: must be one of a, b, or c"
        );
        let err = p.string("empty").unwrap_err().body();
        assert_eq!(err["error"]["code"], "parameter_invalid_empty");
        assert_eq!(
            p.required_string("missing").unwrap_err().body()["error"]["code"],
            "parameter_missing"
        );
    }

    #[test]
    fn metadata_semantics() {
        let mut target = serde_json::json!({"a": "1", "b": "2"});
        params("metadata[a]=&metadata[c]=3")
            .metadata()
            .unwrap()
            .unwrap()
            .apply(&mut target)
            .unwrap();
        assert_eq!(target, serde_json::json!({"b": "2", "c": "3"}));
        params("metadata=")
            .metadata()
            .unwrap()
            .unwrap()
            .apply(&mut target)
            .unwrap();
        assert_eq!(target, serde_json::json!({}));
        let long_key = format!("metadata[{}]=v", "k".repeat(41));
        assert!(params(&long_key).metadata().is_err());
        let long_value = format!("metadata[k]={}", "v".repeat(501));
        assert!(params(&long_value).metadata().is_err());
        let many = (0..51)
            .map(|i| format!("metadata[k{i}]=v"))
            .collect::<Vec<_>>()
            .join("&");
        let update = params(&many).metadata().unwrap().unwrap();
        assert!(update.apply(&mut serde_json::json!({})).is_err());
    }
}

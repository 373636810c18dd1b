//! Checks JSON objects against Stripe's OpenAPI component schemas, as
//! `tests/api/spec/schemas.json` holds them (generated from Stripe's spec by
//! `scripts/gen_spec_schemas.py`; the tests never read the spec itself).
//!
//! OpenAPI 3.0 as Stripe writes it, read strictly:
//! - `required` lists the keys always present; a `nullable` key that is not
//!   required is one Stripe sends as `null` when unset, so it must be
//!   there too; a key that is neither is present only when set, and must
//!   then not be `null`.
//! - An object with `properties` and no `additionalProperties` has exactly
//!   those keys; anything else is an extra key.
//! - `anyOf` / `oneOf`: one alternative must fit. Expandable fields are
//!   `anyOf: [ID string, object…]`.
//! - A free-form object (no `properties`, e.g. an event's `data.object`)
//!   that names its `object` type is checked against that type's schema.

pub mod flows;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A key in the schema's `required` list is absent.
    MissingRequired,
    /// A nullable key (which Stripe sends as `null` when unset) is absent.
    MissingNullable,
    /// A key the schema does not declare.
    ExtraKey,
    /// A value of the wrong JSON type (`null` included).
    WrongType,
    /// A string not among the schema's enum values.
    EnumValue,
}

/// One finding: where (the named schema and its property), what, and an
/// example path and value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub schema: String,
    pub key: String,
    pub kind: Kind,
    pub path: String,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub problems: Vec<Problem>,
    /// The named schemas an object was checked against (nested ones too).
    pub checked: Vec<String>,
}

impl Outcome {
    fn add(&mut self, other: Outcome) {
        self.problems.extend(other.problems);
        self.checked.extend(other.checked);
    }
}

/// Where a value sits: the innermost named schema, the property of it the
/// value belongs to, and the JSON path from the top.
#[derive(Clone)]
struct At<'a> {
    schema: &'a str,
    key: &'a str,
    path: String,
}

impl At<'_> {
    fn problem(&self, kind: Kind, key: &str, detail: String) -> Problem {
        Problem {
            schema: self.schema.to_owned(),
            key: key.to_owned(),
            kind,
            path: self.path.clone(),
            detail,
        }
    }
}

pub struct Spec {
    schemas: HashMap<String, Value>,
    /// Properties a schema has beyond the spec (API version differences),
    /// by (schema, key): the schema their values must match.
    added: HashMap<(String, String), Value>,
    /// Which of `added` some object had.
    pub added_seen: RefCell<BTreeSet<(String, String)>>,
    /// `object` value → schema name (`deleted: true` objects separately).
    by_object: HashMap<String, String>,
    deleted_by_object: HashMap<String, String>,
    pub version: String,
}

impl Spec {
    pub fn load() -> Self {
        let file: Value = serde_json::from_str(include_str!("schemas.json"))
            .expect("tests/api/spec/schemas.json");
        let schemas: HashMap<String, Value> = file["schemas"]
            .as_object()
            .expect("schemas")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut spec = Spec {
            schemas,
            added: HashMap::new(),
            added_seen: RefCell::new(BTreeSet::new()),
            by_object: HashMap::new(),
            deleted_by_object: HashMap::new(),
            version: file["info"]["spec_version"].as_str().unwrap().to_owned(),
        };
        for root in file["info"]["roots"].as_array().unwrap() {
            let name = root.as_str().unwrap();
            let schema = &spec.schemas[name];
            let Some(object) = schema["properties"]["object"]["enum"][0].as_str() else {
                continue;
            };
            let map = if schema["properties"].get("deleted").is_some() {
                &mut spec.deleted_by_object
            } else {
                &mut spec.by_object
            };
            map.insert(object.to_owned(), name.to_owned());
        }
        spec
    }

    /// Declares a property the spec lacks, with the schema (OpenAPI, as
    /// in schemas.json) its values must match.
    pub fn add_property(&mut self, schema: &str, key: &str, node: Value) {
        assert!(
            self.schemas[schema]["properties"].get(key).is_none(),
            "{schema}.{key} is in the spec already"
        );
        self.added.insert((schema.to_owned(), key.to_owned()), node);
    }

    /// Whether a schema is one of the object types (not a part of one).
    pub fn is_root(&self, name: &str) -> bool {
        self.by_object
            .values()
            .chain(self.deleted_by_object.values())
            .any(|n| n == name)
            || name == "error"
    }

    /// The schema an object with this `object` (and `deleted`) has.
    pub fn schema_of(&self, value: &Value) -> Option<&str> {
        let object = value.get("object")?.as_str()?;
        let map = if value.get("deleted") == Some(&Value::Bool(true)) {
            &self.deleted_by_object
        } else {
            &self.by_object
        };
        map.get(object).map(String::as_str)
    }

    /// Checks a value against the named schema.
    pub fn check(&self, value: &Value, schema: &str, path: &str) -> Outcome {
        let node = Value::Object(Map::from_iter([(
            "$ref".to_owned(),
            Value::String(schema.to_owned()),
        )]));
        let at = At {
            schema,
            key: "",
            path: path.to_owned(),
        };
        self.walk(value, &node, &at)
    }

    fn walk(&self, value: &Value, node: &Value, at: &At) -> Outcome {
        let mut out = Outcome::default();
        // Before following a $ref, so that the key named is the parent's.
        if value.is_null() {
            if node["nullable"] != Value::Bool(true) {
                out.problems.push(at.problem(
                    Kind::WrongType,
                    at.key,
                    format!("null where the spec has {}", describe(node)),
                ));
            }
            return out;
        }
        if let Some(name) = node.get("$ref").and_then(Value::as_str) {
            let (name, schema) = self
                .schemas
                .get_key_value(name)
                .unwrap_or_else(|| panic!("schemas.json lacks {name}"));
            if value.is_object() {
                out.checked.push(name.clone());
            }
            let inner = At {
                schema: name,
                key: "",
                path: at.path.clone(),
            };
            out.add(self.walk(value, schema, &inner));
            return out;
        }
        if let Some(alternatives) = node.get("anyOf").or(node.get("oneOf")) {
            return self.any_of(value, alternatives.as_array().unwrap(), at);
        }
        if let Some(values) = node.get("enum").and_then(Value::as_array)
            && !values.contains(value)
        {
            out.problems.push(at.problem(
                Kind::EnumValue,
                at.key,
                format!("{value} is not one of {}", Value::Array(values.clone())),
            ));
            return out;
        }
        let fits = match node.get("type").and_then(Value::as_str) {
            Some("object") | None if node.get("properties").is_some() => {
                return match value.as_object() {
                    Some(map) => self.object(map, node, at),
                    None => wrong_type(value, node, at),
                };
            }
            Some("object") => {
                return match value.as_object() {
                    Some(map) => self.free_object(value, map, node, at),
                    None => wrong_type(value, node, at),
                };
            }
            Some("array") => {
                let Some(items) = value.as_array() else {
                    return wrong_type(value, node, at);
                };
                for (i, item) in items.iter().enumerate() {
                    let inner = At {
                        path: format!("{}[{i}]", at.path),
                        ..at.clone()
                    };
                    out.add(self.walk(item, &node["items"], &inner));
                }
                return out;
            }
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some(other) => panic!("unknown type {other}"),
            None => true,
        };
        if fits {
            out
        } else {
            wrong_type(value, node, at)
        }
    }

    fn object(&self, map: &Map<String, Value>, node: &Value, at: &At) -> Outcome {
        let mut out = Outcome::default();
        let properties = node["properties"].as_object().unwrap();
        let required: Vec<&str> = node["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for key in &required {
            if !map.contains_key(*key) {
                out.problems
                    .push(at.problem(Kind::MissingRequired, key, "absent".into()));
            }
        }
        for (key, property) in properties {
            let nullable = property["nullable"] == Value::Bool(true);
            if nullable && !map.contains_key(key) && !required.contains(&key.as_str()) {
                out.problems.push(at.problem(
                    Kind::MissingNullable,
                    key,
                    "absent (Stripe sends null)".into(),
                ));
            }
        }
        for (key, value) in map {
            let inner = At {
                schema: at.schema,
                key,
                path: format!("{}.{key}", at.path),
            };
            let named = (at.schema.to_owned(), key.clone());
            let added = self.added.get(&named);
            if added.is_some() {
                self.added_seen.borrow_mut().insert(named);
            }
            match (
                properties.get(key).or(added),
                node.get("additionalProperties"),
            ) {
                (Some(property), _) => out.add(self.walk(value, property, &inner)),
                (None, Some(extra)) if extra.is_object() => {
                    out.add(self.walk(value, extra, &inner))
                }
                (None, Some(Value::Bool(true))) => {}
                (None, _) => out.problems.push(at.problem(
                    Kind::ExtraKey,
                    key,
                    format!("not in the spec (value {})", short(value)),
                )),
            }
        }
        out
    }

    /// A free-form object: its values as `additionalProperties` says, or,
    /// when it names a known `object` type, that type's schema.
    fn free_object(
        &self,
        value: &Value,
        map: &Map<String, Value>,
        node: &Value,
        at: &At,
    ) -> Outcome {
        if let Some(schema) = self.schema_of(value) {
            return self.check(value, schema, &at.path);
        }
        let mut out = Outcome::default();
        if let Some(extra) = node.get("additionalProperties").filter(|e| e.is_object()) {
            for (key, item) in map {
                let inner = At {
                    key,
                    path: format!("{}.{key}", at.path),
                    ..at.clone()
                };
                out.add(self.walk(item, extra, &inner));
            }
        }
        out
    }

    fn any_of(&self, value: &Value, alternatives: &[Value], at: &At) -> Outcome {
        let mut tried: Vec<(usize, Outcome)> = Vec::new();
        for (i, alternative) in alternatives.iter().enumerate() {
            let outcome = self.walk(value, alternative, at);
            if outcome.problems.is_empty() {
                return outcome;
            }
            tried.push((i, outcome));
        }
        // None fits: report the alternative meant, i.e. one of the value's
        // JSON type, preferring the schema of its `object` type.
        let schema = self.schema_of(value);
        let meant = tried
            .into_iter()
            .filter(|(i, _)| same_kind(value, &alternatives[*i], self))
            .min_by_key(|(i, o)| {
                let named = alternatives[*i]["$ref"].as_str();
                (named.is_none() || named != schema, o.problems.len())
            });
        match meant {
            Some((_, outcome)) => outcome,
            None => wrong_type(value, &Value::Array(alternatives.to_vec()), at),
        }
    }
}

/// Whether an alternative is of the value's JSON kind (object, string, …).
fn same_kind(value: &Value, alternative: &Value, spec: &Spec) -> bool {
    let node = match alternative["$ref"].as_str() {
        Some(name) => &spec.schemas[name],
        None => alternative,
    };
    if node.get("anyOf").is_some() || node.get("oneOf").is_some() {
        return true;
    }
    let kind = node["type"]
        .as_str()
        .unwrap_or(if node.get("properties").is_some() {
            "object"
        } else {
            ""
        });
    match value {
        Value::Object(_) => kind == "object",
        Value::Array(_) => kind == "array",
        Value::String(_) => kind == "string",
        Value::Bool(_) => kind == "boolean",
        Value::Number(_) => kind == "integer" || kind == "number",
        Value::Null => false,
    }
}

fn wrong_type(value: &Value, node: &Value, at: &At) -> Outcome {
    Outcome {
        problems: vec![at.problem(
            Kind::WrongType,
            at.key,
            format!("{} where the spec has {}", short(value), describe(node)),
        )],
        checked: Vec::new(),
    }
}

fn describe(node: &Value) -> String {
    if let Some(name) = node["$ref"].as_str() {
        return name.to_owned();
    }
    if let Some(alternatives) = node
        .get("anyOf")
        .or(node.get("oneOf"))
        .and_then(Value::as_array)
    {
        let names: Vec<String> = alternatives.iter().map(describe).collect();
        return format!("one of [{}]", names.join(", "));
    }
    if let Some(list) = node.as_array() {
        let names: Vec<String> = list.iter().map(describe).collect();
        return format!("one of [{}]", names.join(", "));
    }
    node["type"].as_str().unwrap_or("any value").to_owned()
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

/// Problems grouped by (schema, key, kind), with how often each occurred
/// and one example.
pub fn summarize(problems: &[Problem]) -> BTreeMap<(String, String, Kind), (usize, Problem)> {
    let mut groups: BTreeMap<(String, String, Kind), (usize, Problem)> = BTreeMap::new();
    for problem in problems {
        let key = (problem.schema.clone(), problem.key.clone(), problem.kind);
        groups
            .entry(key)
            .and_modify(|(n, _)| *n += 1)
            .or_insert((1, problem.clone()));
    }
    groups
}

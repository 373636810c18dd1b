//! Fixtures: Stripe objects every account starts with, so that
//! documentation commands naming a product, a price or a customer created
//! "in the Dashboard" run unchanged against stripe-twin.
//!
//! A fixture set is read once at start-up: the repository's `fixtures/`
//! directory compiled into the binary ([`Fixtures::embedded`]), another
//! directory ([`Fixtures::from_dir`]) or nothing ([`Fixtures::none`]). Each
//! account gets its own copy on first use ([`seed`]): a marker record and
//! every fixture object, committed in one transaction, so that servers
//! sharing one database never seed an account twice.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::core::registry::{FixtureLink, ObjectSpec, Registry};
use crate::store::{Record, Store, StoreError, StoreResult, Write};

/// The record that says an account has its copy of the fixtures. It lives
/// among the account's objects, so wiping the account removes it too.
pub const MARKER_ID: &str = "_twin_fixtures";
pub const MARKER_OBJECT: &str = "fixtures_marker";

/// The repository's `fixtures/*.json`, compiled in (keep sorted by name;
/// a unit test checks that this lists every file of the directory).
const EMBEDDED: &[(&str, &str)] = &[
    (
        "fixtures/customers.json",
        include_str!("../fixtures/customers.json"),
    ),
    (
        "fixtures/prices.json",
        include_str!("../fixtures/prices.json"),
    ),
    (
        "fixtures/products.json",
        include_str!("../fixtures/products.json"),
    ),
];

/// A fixture file that cannot be used: which file, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct FixtureError {
    /// The file (or directory) as given, e.g. `fixtures/prices.json`.
    pub file: String,
    pub message: String,
}

impl FixtureError {
    fn new(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            message: message.into(),
        }
    }
}

/// One fixture object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    /// The file it was read from.
    pub file: String,
    /// Its position in that file (1-based).
    pub index: usize,
    pub data: Value,
}

impl Fixture {
    pub fn id(&self) -> &str {
        self.data["id"].as_str().unwrap_or_default()
    }

    pub fn object(&self) -> &str {
        self.data["object"].as_str().unwrap_or_default()
    }

    fn describe(&self) -> String {
        format!("{}: object {} ({})", self.file, self.index, self.id())
    }
}

/// The objects every account starts with, in file order (files sorted by
/// name). Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fixtures {
    objects: Arc<Vec<Fixture>>,
    source: String,
}

impl Fixtures {
    /// No fixtures: every account starts empty.
    pub fn none() -> Self {
        Self {
            objects: Arc::default(),
            source: "none".to_owned(),
        }
    }

    /// The repository's `fixtures/` directory, compiled into the binary.
    pub fn embedded(registry: &Registry) -> Result<Self, FixtureError> {
        Self::from_files(EMBEDDED.iter().copied(), registry).map(|f| f.with_source("built-in"))
    }

    /// Every `*.json` file of `dir`, in name order. Each file holds one
    /// Stripe object or an array of them.
    pub fn from_dir(dir: &Path, registry: &Registry) -> Result<Self, FixtureError> {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|err| {
            FixtureError::new(&shown, format!("cannot read the fixtures directory: {err}"))
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| {
                FixtureError::new(&shown, format!("cannot read the fixtures directory: {err}"))
            })?;
            let path = entry.path();
            let is_json = path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
            if is_json && path.is_file() {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(FixtureError::new(
                &shown,
                "no *.json fixture files here (use --no-fixtures to start every account empty)",
            ));
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|err| FixtureError::new(&name, format!("cannot read the file: {err}")))?;
            files.push((name, text));
        }
        Self::from_files(
            files
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str())),
            registry,
        )
        .map(|f| f.with_source(&shown))
    }

    /// Parses and checks fixture files given as (name, contents), in
    /// order, against the object types of `registry`.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        registry: &Registry,
    ) -> Result<Self, FixtureError> {
        let mut objects = Vec::new();
        for (name, text) in files {
            parse_file(name, text, registry, &mut objects)?;
        }
        check_set(&objects, registry)?;
        Ok(Self {
            objects: Arc::new(objects),
            source: "given files".to_owned(),
        })
    }

    fn with_source(mut self, source: &str) -> Self {
        self.source = source.to_owned();
        self
    }

    /// The objects, in file order.
    pub fn objects(&self) -> &[Fixture] {
        &self.objects
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Where the fixtures came from, for the start-up line: `built-in`,
    /// a directory, or `none`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The fixture with this id, if any.
    pub fn get(&self, id: &str) -> Option<&Fixture> {
        self.objects.iter().find(|f| f.id() == id)
    }
}

/// Where serde_json stopped, as `line L column C: what`.
fn json_error(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    let what = full.strip_suffix(&position).unwrap_or(&full);
    if err.line() == 0 {
        what.to_owned()
    } else {
        format!("line {} column {}: {what}", err.line(), err.column())
    }
}

fn parse_file(
    name: &str,
    text: &str,
    registry: &Registry,
    out: &mut Vec<Fixture>,
) -> Result<(), FixtureError> {
    let value: Value =
        serde_json::from_str(text).map_err(|err| FixtureError::new(name, json_error(&err)))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(_) => vec![value],
        other => {
            return Err(FixtureError::new(
                name,
                format!(
                    "expected a Stripe object or an array of them, found {}",
                    kind_of(&other)
                ),
            ));
        }
    };
    for (i, item) in items.into_iter().enumerate() {
        let index = i + 1;
        check_object(name, index, &item, registry)?;
        out.push(Fixture {
            file: name.to_owned(),
            index,
            data: item,
        });
    }
    Ok(())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_object(
    name: &str,
    index: usize,
    item: &Value,
    registry: &Registry,
) -> Result<(), FixtureError> {
    let at = |message: String| FixtureError::new(name, format!("object {index} {message}"));
    let Value::Object(map) = item else {
        return Err(at(format!("is {}, not a JSON object", kind_of(item))));
    };
    let id = match map.get("id") {
        None => return Err(at("has no \"id\"".to_owned())),
        Some(Value::String(id)) if !id.trim().is_empty() => id.as_str(),
        Some(other) => {
            return Err(at(format!(
                "has an \"id\" that is {}, not a non-empty string",
                kind_of(other)
            )));
        }
    };
    let at = |message: String| FixtureError::new(name, format!("object {index} ({id}) {message}"));
    let object = match map.get("object") {
        None => return Err(at("has no \"object\"".to_owned())),
        Some(Value::String(object)) => object.as_str(),
        Some(other) => {
            return Err(at(format!(
                "has an \"object\" that is {}, not a string",
                kind_of(other)
            )));
        }
    };
    let Some(spec) = registry.get(object).filter(|spec| spec.fixture.is_some()) else {
        let types: Vec<&str> = registry.fixture_types().map(|spec| spec.object).collect();
        return Err(at(format!(
            "has \"object\": \"{object}\", which cannot be a fixture; fixtures may be: {}",
            types.join(", ")
        )));
    };
    let prefix = format!("{}_", spec.id_prefix);
    if !spec.custom_ids && !id.starts_with(&prefix) {
        return Err(at(format!(
            "is a {object}, whose id must start with \"{prefix}\""
        )));
    }
    if id == MARKER_ID {
        return Err(at("uses an id reserved by stripe-twin".to_owned()));
    }
    match map.get("created") {
        None => return Err(at("has no \"created\" (a Unix timestamp)".to_owned())),
        Some(created) if created.is_i64() => {}
        Some(other) => {
            return Err(at(format!(
                "has a \"created\" that is {}, not an integer Unix timestamp",
                kind_of(other)
            )));
        }
    }
    if map.get("livemode") == Some(&Value::Bool(true)) {
        return Err(at(
            "has \"livemode\": true; stripe-twin serves test mode only".to_owned(),
        ));
    }
    Ok(())
}

/// Ids are unique, and the fields the registry marks as links name other
/// fixtures of the right type (and, where it says so, are named back).
fn check_set(objects: &[Fixture], registry: &Registry) -> Result<(), FixtureError> {
    let mut by_id: HashMap<&str, &Fixture> = HashMap::new();
    for fixture in objects {
        if let Some(first) = by_id.insert(fixture.id(), fixture) {
            return Err(FixtureError::new(
                &fixture.file,
                format!(
                    "object {} ({}) has the same id as {}",
                    fixture.index,
                    fixture.id(),
                    first.describe()
                ),
            ));
        }
    }
    for fixture in objects {
        let links = registry
            .get(fixture.object())
            .and_then(|spec: &ObjectSpec| spec.fixture)
            .unwrap_or_default();
        for link in links {
            check_link(fixture, link, &by_id)?;
        }
    }
    Ok(())
}

fn check_link(
    fixture: &Fixture,
    link: &FixtureLink,
    by_id: &HashMap<&str, &Fixture>,
) -> Result<(), FixtureError> {
    let (field, wanted) = (link.field, link.object);
    let broken = |why: String| {
        FixtureError::new(
            &fixture.file,
            format!("object {} ({}): {field} {why}", fixture.index, fixture.id()),
        )
    };
    let pointer = format!("/{}", field.replace('.', "/"));
    let value = fixture.data.pointer(&pointer).unwrap_or(&Value::Null);
    if value.is_null() && link.optional {
        return Ok(());
    }
    let Value::String(target) = value else {
        return Err(broken(format!(
            "must be the id of a {wanted} (a string), found {}",
            kind_of(value)
        )));
    };
    let found = match by_id.get(target.as_str()) {
        Some(found) if found.object() == wanted => found,
        Some(found) => {
            return Err(broken(format!(
                "is {target}, a {} ({}), not a {wanted}",
                found.object(),
                found.describe()
            )));
        }
        None => {
            return Err(broken(format!(
                "is {target}, which is not a {wanted} among the fixtures"
            )));
        }
    };
    if let Some((back, why)) = link.back {
        let owner = &found.data[back];
        if owner != &json!(fixture.id()) {
            return Err(broken(format!(
                "{target} {why} (its \"{back}\" is {owner})"
            )));
        }
    }
    Ok(())
}

/// Gives `account` its copy of the fixtures unless it has one: the marker
/// and every fixture object in one transaction. Another request or server
/// process seeding the same account at once makes this one's insert
/// conflict; it then finds the marker and is done. Returns whether this
/// call did the seeding.
pub async fn seed(
    store: &dyn Store,
    account: &str,
    fixtures: &Fixtures,
    now: i64,
) -> StoreResult<bool> {
    if fixtures.is_empty() {
        return Ok(false);
    }
    let marker = Record::new(
        MARKER_OBJECT,
        json!({
            "id": MARKER_ID,
            "object": MARKER_OBJECT,
            "created": now,
            "objects": fixtures.len(),
        }),
    );
    for attempt in 0..5 {
        if store.get(account, MARKER_ID).await?.is_some() {
            return Ok(false);
        }
        let mut writes = vec![Write::Insert(marker.clone())];
        for fixture in fixtures.objects() {
            // After a conflict without a marker, an object with a fixture's
            // id exists already (made before this server had fixtures):
            // keep it, add the rest.
            if attempt > 0 && store.get(account, fixture.id()).await?.is_some() {
                continue;
            }
            writes.push(Write::Insert(Record::new(
                fixture.object(),
                fixture.data.clone(),
            )));
        }
        match store.commit(account, &writes).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict) => {
                tracing::debug!(
                    account,
                    attempt,
                    "another request seeded the fixtures first"
                );
                continue;
            }
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Conflict)
}

impl fmt::Display for Fixtures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.len();
        match count {
            0 => write!(f, "none"),
            1 => write!(f, "1 object from {}", self.source),
            n => write!(f, "{n} objects from {}", self.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::REGISTRY;

    fn one(name: &str, text: &str) -> Result<Fixtures, FixtureError> {
        Fixtures::from_files([(name, text)], &REGISTRY)
    }

    #[test]
    fn embedded_fixtures_parse() {
        let fixtures = Fixtures::embedded(&REGISTRY).expect("the repository's fixtures parse");
        let customer = fixtures
            .get("cus_ODQluYFNl44ODI")
            .expect("the docs' customer");
        assert_eq!(customer.object(), "customer");
        assert_eq!(
            customer.data["description"],
            "My First Test Customer (created for API docs)"
        );
        let price = fixtures
            .get("price_G0FvDp6vZvdwRZ")
            .expect("the docs' price");
        assert_eq!(price.data["unit_amount"], 1500);
        assert_eq!(price.data["currency"], "usd");
        assert_eq!(price.data["recurring"]["interval"], "month");
        let product = fixtures
            .get(price.data["product"].as_str().unwrap())
            .unwrap();
        assert_eq!(product.data["name"], "Stock photo subscription");
        assert_eq!(product.data["default_price"], "price_G0FvDp6vZvdwRZ");
        assert_eq!(fixtures.source(), "built-in");
    }

    #[test]
    fn embedded_list_covers_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json"))
            .map(|name| format!("fixtures/{name}"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = EMBEDDED.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(embedded, on_disk, "list every fixtures/*.json in EMBEDDED");
        // And the directory loads to the same set.
        assert_eq!(
            Fixtures::from_dir(&dir, &REGISTRY).unwrap().objects().len(),
            Fixtures::embedded(&REGISTRY).unwrap().len()
        );
    }

    #[test]
    fn the_customer_fixture_has_the_shape_customers_are_stored_in() {
        let fixtures = Fixtures::embedded(&REGISTRY).unwrap();
        let customer = &fixtures.get("cus_ODQluYFNl44ODI").unwrap().data;
        let mut keys: Vec<&str> = customer
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert!(keys.contains(&"tax") && keys.contains(&"cash_balance"));
        assert_eq!(customer["cash_balance"]["customer"], "cus_ODQluYFNl44ODI");
    }

    #[test]
    fn malformed_json_names_file_and_position() {
        let err = one(
            "fixtures/prices.json",
            "[\n  {\"id\": \"price_1\",\n    oops\n]",
        )
        .unwrap_err();
        assert_eq!(err.file, "fixtures/prices.json");
        let text = err.to_string();
        assert!(
            text.starts_with("fixtures/prices.json: line 3 column 5: "),
            "{text}"
        );
        assert!(!text.ends_with("column 5"), "{text}");
    }

    #[test]
    fn objects_need_id_object_and_created() {
        let cases = [
            (
                "[{\"object\": \"customer\", \"created\": 1}]",
                "object 1 has no \"id\"",
            ),
            (
                "{\"id\": 5, \"object\": \"customer\", \"created\": 1}",
                "object 1 has an \"id\" that is a number",
            ),
            (
                "[{\"id\": \"cus_1\", \"created\": 1}]",
                "object 1 (cus_1) has no \"object\"",
            ),
            (
                "[{\"id\": \"cus_1\", \"object\": \"customer\"}]",
                "object 1 (cus_1) has no \"created\"",
            ),
            (
                "[{\"id\": \"cus_1\", \"object\": \"customer\", \"created\": \"today\"}]",
                "not an integer",
            ),
            (
                "[{\"id\": \"cus_1\", \"object\": \"customer\", \"created\": 1}, {\"object\": \"customer\"}]",
                "object 2 has no \"id\"",
            ),
            (
                "[{\"id\": \"in_1\", \"object\": \"invoice\", \"created\": 1}]",
                "\"invoice\", which cannot be a fixture; fixtures may be: customer, product, price, payment_method",
            ),
            (
                "[{\"id\": \"x_1\", \"object\": \"customer\", \"created\": 1}]",
                "must start with \"cus_\"",
            ),
            (
                "42",
                "expected a Stripe object or an array of them, found a number",
            ),
            ("[1]", "object 1 is a number, not a JSON object"),
        ];
        for (text, wanted) in cases {
            let err = one("f.json", text).unwrap_err().to_string();
            assert!(err.starts_with("f.json: "), "{err}");
            assert!(err.contains(wanted), "{text}: {err}");
        }
    }

    #[test]
    fn references_must_resolve() {
        let product =
            r#"{"id": "prod_A", "object": "product", "created": 1, "default_price": null}"#;
        let price = |product: &str| {
            format!(
                r#"{{"id": "price_A", "object": "price", "created": 1, "product": "{product}"}}"#
            )
        };
        // A price's product may come in a later file.
        let ok_price = price("prod_A");
        Fixtures::from_files(
            [("a.json", ok_price.as_str()), ("b.json", product)],
            &REGISTRY,
        )
        .unwrap();

        let missing = price("prod_B");
        let err = Fixtures::from_files(
            [("a.json", missing.as_str()), ("b.json", product)],
            &REGISTRY,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "a.json: object 1 (price_A): product is prod_B, which is not a product among the fixtures"
        );
        let no_product = r#"{"id": "price_A", "object": "price", "created": 1}"#;
        let err = one("a.json", no_product).unwrap_err().to_string();
        assert!(err.contains("product must be the id of a product"), "{err}");

        let customer_pm = r#"[{"id": "cus_A", "object": "customer", "created": 1,
            "invoice_settings": {"default_payment_method": "pm_A"}}]"#;
        let err = one("c.json", customer_pm).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "c.json: object 1 (cus_A): invoice_settings.default_payment_method is pm_A"
            ),
            "{err}"
        );
        let pm =
            r#"[{"id": "pm_A", "object": "payment_method", "created": 1, "customer": "cus_A"}]"#;
        Fixtures::from_files([("c.json", customer_pm), ("p.json", pm)], &REGISTRY).unwrap();
        let other_customer =
            r#"[{"id": "pm_A", "object": "payment_method", "created": 1, "customer": "cus_B"}]"#;
        let err = Fixtures::from_files(
            [("c.json", customer_pm), ("p.json", other_customer)],
            &REGISTRY,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.json: object 1 (cus_A)"), "{err}");

        let twice = Fixtures::from_files([("a.json", product), ("b.json", product)], &REGISTRY)
            .unwrap_err()
            .to_string();
        assert_eq!(
            twice,
            "b.json: object 1 (prod_A) has the same id as a.json: object 1 (prod_A)"
        );
    }

    #[test]
    fn from_dir_reads_json_files_in_name_order() {
        let dir =
            std::env::temp_dir().join(format!("twin-fixtures-{}", crate::ids::random_base62(10)));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("b.json"),
            r#"{"id": "cus_B", "object": "customer", "created": 2}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("a.json"),
            r#"[{"id": "cus_A", "object": "customer", "created": 1}]"#,
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a fixture").unwrap();
        let fixtures = Fixtures::from_dir(&dir, &REGISTRY).unwrap();
        let ids: Vec<&str> = fixtures.objects().iter().map(Fixture::id).collect();
        assert_eq!(ids, ["cus_A", "cus_B"]);
        std::fs::write(dir.join("c.json"), "{").unwrap();
        let err = Fixtures::from_dir(&dir, &REGISTRY).unwrap_err();
        assert!(err.file.ends_with("c.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        let err = Fixtures::from_dir(&dir, &REGISTRY).unwrap_err().to_string();
        assert!(err.contains("cannot read the fixtures directory"), "{err}");
    }
}

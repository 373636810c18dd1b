//! Stripe's length limits on string parameters, from its spec (generated
//! into `spec/param_limits.txt` by `scripts/gen_param_limits.py`): 5000
//! characters unless the spec says otherwise (`email` 512, `phone` 20, …).
//! Checked once per request, before any handler sees the parameters, so
//! no field can carry 900 KB into every later event.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use crate::http::error::{ApiError, ApiResult};
use crate::http::form::Node;

/// Stripe's usual bound on a string parameter.
pub const DEFAULT_MAX_LEN: usize = 5000;

type Table = HashMap<String, HashMap<String, usize>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        include_str!("spec/param_limits.txt")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('\t'))
            .map(|(operation, limits)| {
                let limits = limits
                    .split(' ')
                    .filter_map(|entry| entry.rsplit_once('='))
                    .filter_map(|(name, limit)| Some((name.to_owned(), limit.parse().ok()?)))
                    .collect();
                (operation.to_owned(), limits)
            })
            .collect()
    })
}

/// `POST /v1/customers/{}` for `POST` and `/v1/customers/{id}`.
fn operation(method: &str, template: &str) -> String {
    let mut path = String::with_capacity(template.len());
    let mut in_variable = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_variable = true;
                path.push_str("{}");
            }
            '}' => in_variable = false,
            c if !in_variable => path.push(c),
            _ => {}
        }
    }
    format!("{method} {path}")
}

/// Refuses the first string parameter longer than its limit.
pub fn check(method: &str, template: &str, params: &BTreeMap<String, Node>) -> ApiResult<()> {
    let limits = table().get(&operation(method, template));
    for (key, node) in params {
        check_node(limits, key, key, node)?;
    }
    Ok(())
}

/// `name` as sent (`items[0][price]`), `shape` as the table writes it
/// (`items[][price]`).
fn check_node(
    limits: Option<&HashMap<String, usize>>,
    name: &str,
    shape: &str,
    node: &Node,
) -> ApiResult<()> {
    match node {
        Node::Str(value) => {
            let limit = limits
                .and_then(|l| l.get(shape))
                .copied()
                .unwrap_or(DEFAULT_MAX_LEN);
            if value.chars().count() > limit {
                return Err(too_long(name, value, limit));
            }
        }
        Node::Map(map) => {
            for (key, child) in map {
                // `items[0]` is a position in a list, as `items[]` is.
                let step = if key.bytes().all(|b| b.is_ascii_digit()) {
                    ""
                } else {
                    key.as_str()
                };
                let shape = format!("{shape}[{step}]");
                check_node(limits, &format!("{name}[{key}]"), &shape, child)?;
            }
        }
        Node::List(items) => {
            for (n, child) in items.iter().enumerate() {
                check_node(
                    limits,
                    &format!("{name}[{n}]"),
                    &format!("{shape}[]"),
                    child,
                )?;
            }
        }
    }
    Ok(())
}

fn too_long(name: &str, value: &str, limit: usize) -> ApiError {
    let start: String = value.chars().take(20).collect();
    ApiError::invalid_param(
        name,
        format!("Invalid string: {start}...; must be at most {limit} characters"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> BTreeMap<String, Node> {
        crate::http::form::decode(body.as_bytes()).unwrap()
    }

    #[test]
    fn limits_come_from_the_spec_or_default_to_5000() {
        let ok = form(&format!("description={}&email=a%40b.c", "d".repeat(5000)));
        assert!(check("POST", "/v1/customers", &ok).is_ok());
        let long = form(&format!("description={}", "é".repeat(5001)));
        let err = check("POST", "/v1/customers", &long).unwrap_err();
        assert_eq!(err.body()["error"]["param"], "description");
        let email = form(&format!("email={}", "e".repeat(513)));
        assert!(check("POST", "/v1/customers/{id}", &email).is_err());
        assert!(check("POST", "/v1/customers/{customer}", &email).is_err());
        let listed = form(&format!(
            "invoice_settings[custom_fields][0][name]={}",
            "n".repeat(41)
        ));
        let err = check("POST", "/v1/customers", &listed).unwrap_err();
        assert_eq!(
            err.body()["error"]["param"],
            "invoice_settings[custom_fields][0][name]"
        );
        // Operations the spec does not know still get the default.
        let other = form(&format!("x={}", "x".repeat(5001)));
        assert!(check("POST", "/_config/anything", &other).is_err());
    }
}

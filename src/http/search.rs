//! Stripe's search query language, e.g.
//! `email:"jo@example.com" AND metadata['plan']:'pro' AND created>1700000000`.
//!
//! Clauses are `field:value` (exact, case-insensitive), `field~value`
//! (substring, 3+ characters), `field>N` / `>=` / `<` / `<=` on numbers,
//! negated with a leading `-`, joined by `AND` or by `OR` (not both).

use serde_json::Value;

use crate::http::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A string field: `:` and `~`.
    Text,
    /// A unix timestamp or amount: `:`, `>`, `>=`, `<`, `<=`.
    Number,
    /// A boolean, searched as text: `active:'true'`.
    Boolean,
    /// An exact value (a card's `last4`, `exp_year`): `:` only.
    Token,
}

/// A searchable resource: its object type, its name in Stripe's messages,
/// its search URL and fields.
pub struct Spec {
    pub object: &'static str,
    pub resource: &'static str,
    pub url: &'static str,
    pub fields: &'static [(&'static str, FieldKind)],
    /// Search fields kept elsewhere in the document than their name says
    /// (`subscription` → `parent.subscription_details.subscription`).
    pub paths: &'static [(&'static str, &'static str)],
}

impl Spec {
    /// Parses and checks a query, each field resolved to its place in the
    /// resource's documents.
    pub fn query(&self, text: &str) -> ApiResult<Query> {
        let mut query = parse(text)?;
        query.validate(self.resource, self.fields)?;
        for clause in &mut query.clauses {
            if let Some((_, path)) = self.paths.iter().find(|(field, _)| *field == clause.field) {
                clause.field = (*path).to_owned();
            }
        }
        Ok(query)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Text(String),
    Number(i64),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equals,
    Contains,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub negated: bool,
    /// A top-level field name, or `metadata` with `key` set.
    pub field: String,
    pub metadata_key: Option<String>,
    pub op: Op,
    pub term: Term,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub clauses: Vec<Clause>,
    /// All clauses must hold (AND) or any one (OR).
    pub any: bool,
}

fn query_error(message: impl Into<String>) -> ApiError {
    ApiError::invalid_param("query", message)
}

struct Lexer<'a> {
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest.starts_with(token) {
            self.rest = &self.rest[token.len()..];
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let (ident, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(ident)
    }

    fn quoted(&mut self) -> ApiResult<Option<String>> {
        let Some(quote) = self.rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            return Ok(None);
        };
        let mut out = String::new();
        let mut chars = self.rest[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                c if c == quote => {
                    self.rest = &self.rest[1 + i + 1..];
                    return Ok(Some(out));
                }
                c => out.push(c),
            }
        }
        Err(query_error(
            "The search query has an unterminated quoted string.",
        ))
    }
}

pub fn parse(input: &str) -> ApiResult<Query> {
    let mut lexer = Lexer { rest: input };
    let mut clauses = Vec::new();
    let mut joiner: Option<&str> = None;
    loop {
        lexer.skip_ws();
        clauses.push(parse_clause(&mut lexer)?);
        lexer.skip_ws();
        if lexer.rest.is_empty() {
            break;
        }
        let word = lexer.ident().unwrap_or_default();
        if word != "AND" && word != "OR" {
            return Err(query_error(format!(
                "The search query is invalid near '{}': clauses must be joined with AND or OR.",
                if word.is_empty() { lexer.rest } else { word }
            )));
        }
        if joiner.is_some_and(|j| j != word) {
            return Err(query_error(
                "A search query cannot combine AND and OR; use one of them throughout.",
            ));
        }
        joiner = Some(if word == "AND" { "AND" } else { "OR" });
    }
    if clauses.len() > 10 {
        return Err(query_error("A search query can have at most 10 clauses."));
    }
    Ok(Query {
        clauses,
        any: joiner == Some("OR"),
    })
}

fn parse_clause(lexer: &mut Lexer<'_>) -> ApiResult<Clause> {
    let negated = lexer.eat("-");
    let field = lexer
        .ident()
        .ok_or_else(|| {
            query_error(format!(
                "The search query is invalid near '{}': expected a field name.",
                lexer.rest
            ))
        })?
        .to_owned();
    let metadata_key = if field == "metadata" {
        if !lexer.eat("[") {
            return Err(query_error("Search metadata with metadata['key']."));
        }
        let key = lexer.quoted()?.ok_or_else(|| {
            query_error("Search metadata with metadata['key']: the key must be quoted.")
        })?;
        if !lexer.eat("]") {
            return Err(query_error(
                "Search metadata with metadata['key']: missing ']'.",
            ));
        }
        Some(key)
    } else {
        None
    };
    let op = if lexer.eat(":") {
        Op::Equals
    } else if lexer.eat("~") {
        Op::Contains
    } else if lexer.eat(">=") {
        Op::Gte
    } else if lexer.eat("<=") {
        Op::Lte
    } else if lexer.eat(">") {
        Op::Gt
    } else if lexer.eat("<") {
        Op::Lt
    } else {
        return Err(query_error(format!(
            "The search query is invalid after '{field}': expected one of :, ~, >, >=, <, <=."
        )));
    };
    let term = if let Some(text) = lexer.quoted()? {
        Term::Text(text)
    } else {
        let word = lexer.ident().unwrap_or_default();
        if word == "null" {
            Term::Null
        } else if let Ok(n) = word.parse::<i64>() {
            Term::Number(n)
        } else {
            return Err(query_error(format!(
                "The search query has an invalid value for '{field}': put text values in quotes, e.g. {field}:\"value\"."
            )));
        }
    };
    Ok(Clause {
        negated,
        field,
        metadata_key,
        op,
        term,
    })
}

impl Query {
    /// Checks every clause against the fields a resource supports.
    pub fn validate(&self, resource: &str, fields: &[(&str, FieldKind)]) -> ApiResult<()> {
        for clause in &self.clauses {
            if clause.metadata_key.is_some() {
                if !matches!(clause.op, Op::Equals) {
                    return Err(query_error("metadata supports only the ':' operator."));
                }
                continue;
            }
            let Some((_, kind)) = fields.iter().find(|(name, _)| *name == clause.field) else {
                return Err(query_error(format!(
                    "Field '{}' is an unsupported search field for resource {resource}. See https://docs.stripe.com/search#query-fields-for-{resource} for a list of supported fields.",
                    clause.field
                )));
            };
            match (kind, clause.op, &clause.term) {
                (FieldKind::Text, Op::Equals | Op::Contains, Term::Text(t)) => {
                    if clause.op == Op::Contains && t.chars().count() < 3 {
                        return Err(query_error(
                            "A substring (~) search needs a value of at least 3 characters.",
                        ));
                    }
                }
                (FieldKind::Text, Op::Equals, Term::Null) => {}
                (FieldKind::Token, Op::Equals, Term::Text(_) | Term::Number(_) | Term::Null) => {}
                (FieldKind::Boolean, Op::Equals, Term::Text(t)) if t == "true" || t == "false" => {}
                (FieldKind::Boolean, _, _) => {
                    return Err(query_error(format!(
                        "Field '{}' is a boolean: search it with {0}:'true' or {0}:'false'.",
                        clause.field
                    )));
                }
                (
                    FieldKind::Number,
                    Op::Equals | Op::Gt | Op::Gte | Op::Lt | Op::Lte,
                    Term::Number(_),
                ) => {}
                _ => {
                    return Err(query_error(format!(
                        "The search query uses an operator or value that field '{}' does not support.",
                        clause.field
                    )));
                }
            }
        }
        Ok(())
    }

    /// The exact, case-insensitive text a match must have in `field`, when
    /// every match must (an AND query with `field:'…'`).
    pub fn required_text(&self, field: &str) -> Option<&str> {
        if self.any && self.clauses.len() > 1 {
            return None;
        }
        self.clauses.iter().find_map(|c| match (&c.term, c.op) {
            (Term::Text(text), Op::Equals)
                if !c.negated && c.metadata_key.is_none() && c.field == field =>
            {
                Some(text.as_str())
            }
            _ => None,
        })
    }

    pub fn matches(&self, doc: &Value) -> bool {
        let mut results = self.clauses.iter().map(|c| c.matches(doc) != c.negated);
        if self.any {
            results.any(|r| r)
        } else {
            results.all(|r| r)
        }
    }
}

impl Clause {
    fn matches(&self, doc: &Value) -> bool {
        let value = match &self.metadata_key {
            Some(key) => &doc["metadata"][key.as_str()],
            // Nested fields are dotted: `payment_method_details.card.last4`.
            None => self.field.split('.').fold(doc, |value, key| &value[key]),
        };
        match (&self.term, self.op) {
            (Term::Null, _) => value.is_null(),
            (Term::Text(t), Op::Equals) => match value {
                Value::Bool(b) => b.to_string() == *t,
                Value::Number(n) => n.to_string() == *t,
                _ => value
                    .as_str()
                    .is_some_and(|v| v.to_lowercase() == t.to_lowercase()),
            },
            (Term::Text(t), Op::Contains) => value
                .as_str()
                .is_some_and(|v| v.to_lowercase().contains(&t.to_lowercase())),
            // An unquoted number against a token stored as text (`last4:4242`).
            (Term::Number(n), Op::Equals) if value.is_string() => {
                value.as_str().and_then(|v| v.parse::<i64>().ok()) == Some(*n)
            }
            (Term::Number(n), op) => value.as_i64().is_some_and(|v| match op {
                Op::Gt => v > *n,
                Op::Gte => v >= *n,
                Op::Lt => v < *n,
                Op::Lte => v <= *n,
                _ => v == *n,
            }),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: &[(&str, FieldKind)] = &[
        ("email", FieldKind::Text),
        ("name", FieldKind::Text),
        ("created", FieldKind::Number),
    ];

    fn query(q: &str) -> Query {
        let query = parse(q).unwrap();
        query.validate("customers", FIELDS).unwrap();
        query
    }

    #[test]
    fn matches_like_stripe() {
        let doc = json!({"email": "Jo@Example.com", "name": "Jo Smith", "created": 100, "metadata": {"plan": "pro"}});
        assert!(query("email:'jo@example.com'").matches(&doc));
        assert!(query("name~\"smi\" AND created>99").matches(&doc));
        assert!(!query("name~\"smi\" AND created>100").matches(&doc));
        assert!(query("name:'nope' OR metadata['plan']:'pro'").matches(&doc));
        assert!(query("-metadata[\"plan\"]:'free'").matches(&doc));
        assert!(query("created>=100 AND created<=100").matches(&doc));
        assert!(query("metadata['missing']:null").matches(&doc));
        let nested = json!({"payment_method_details": {"card": {"last4": "4242"}}});
        let fields = &[("payment_method_details.card.last4", FieldKind::Text)];
        let last4 = parse("payment_method_details.card.last4:'4242'").unwrap();
        last4.validate("charges", fields).unwrap();
        assert!(last4.matches(&nested));
        assert!(!last4.matches(&doc));
    }

    #[test]
    fn rejects_bad_queries() {
        for bad in [
            "",
            "email",
            "email:jo",
            "email:'a' AND name:'b' OR name:'c'",
            "name~'ab'",
            "created:'x'",
            "email:'unterminated",
            "email:'a' XOR name:'b'",
        ] {
            let result = parse(bad).and_then(|q| q.validate("customers", FIELDS));
            assert!(result.is_err(), "{bad}");
        }
        let err = parse("foo:'x'")
            .unwrap()
            .validate("customers", FIELDS)
            .unwrap_err();
        assert!(err.to_string().contains("unsupported search field"));
    }
}

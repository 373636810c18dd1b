//! Stripe's form encoding: `application/x-www-form-urlencoded` pairs whose
//! names use bracket notation (`a[b][c]=`, `a[]=x`, `items[0][price]=`).
//!
//! Decoding is strict: malformed percent-encoding, invalid UTF-8, NUL bytes,
//! too many pairs or too deep nesting are client errors, never silently
//! repaired (a lenient decoder would store data the client did not send).
//! Indexed segments (`a[0]`) decode as map keys; the typed accessors in
//! `params` turn numeric-keyed maps into lists where a list is expected, as
//! Stripe's own API does.

use std::collections::BTreeMap;

/// At most this many `name=value` pairs in one request.
pub const MAX_PAIRS: usize = 4096;
/// At most this many bracket segments in one parameter name.
pub const MAX_DEPTH: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Str(String),
    Map(BTreeMap<String, Node>),
    List(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "Invalid percent-encoding in the request: '%' must be followed by two hexadecimal digits."
    )]
    BadPercent,
    #[error("Invalid request: parameters must be UTF-8 encoded text.")]
    BadUtf8,
    #[error("Invalid request: parameters may not contain NUL bytes.")]
    NulByte,
    #[error("Too many parameters in the request (the maximum is {MAX_PAIRS}).")]
    TooManyPairs,
    #[error("The parameter {0} is nested too deeply (at most {MAX_DEPTH} levels of brackets).")]
    TooDeep(String),
    #[error("Invalid parameter name: {0}")]
    BadName(String),
    #[error("Invalid value for {0}: it was sent both as a single value and as a hash or array.")]
    Conflict(String),
}

/// Decodes one form body or query string into a tree of parameters.
pub fn decode(input: &[u8]) -> Result<BTreeMap<String, Node>, DecodeError> {
    let mut root = BTreeMap::new();
    let mut pairs = 0usize;
    for segment in input.split(|b| *b == b'&') {
        if segment.is_empty() {
            continue;
        }
        pairs += 1;
        if pairs > MAX_PAIRS {
            return Err(DecodeError::TooManyPairs);
        }
        let (raw_name, raw_value) = match segment.iter().position(|b| *b == b'=') {
            Some(at) => (&segment[..at], &segment[at + 1..]),
            None => (segment, &b""[..]),
        };
        let name = percent_decode(raw_name)?;
        let value = percent_decode(raw_value)?;
        if name.is_empty() {
            continue;
        }
        let (base, path) = split_name(&name)?;
        insert(&mut root, &name, base, &path, value)?;
    }
    Ok(root)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one component (`+` is a space), refusing what cannot be
/// decoded faithfully.
pub fn percent_decode(raw: &[u8]) -> Result<String, DecodeError> {
    let out = percent_bytes(raw, true)?;
    if out.contains(&0) {
        return Err(DecodeError::NulByte);
    }
    String::from_utf8(out).map_err(|_| DecodeError::BadUtf8)
}

/// The bytes percent-escapes stand for (`+` a space when `plus_is_space`:
/// in forms, not in paths).
pub fn percent_bytes(raw: &[u8], plus_is_space: bool) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex);
                let lo = raw.get(i + 2).copied().and_then(hex);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(DecodeError::BadPercent),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// A bracket segment: `[]` appends to a list, `[key]` names a map entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment<'a> {
    Append,
    Key(&'a str),
}

fn split_name(name: &str) -> Result<(&str, Vec<Segment<'_>>), DecodeError> {
    let Some(open) = name.find('[') else {
        return Ok((name, Vec::new()));
    };
    let base = &name[..open];
    if base.is_empty() {
        return Err(DecodeError::BadName(name.to_owned()));
    }
    let mut rest = &name[open..];
    let mut path = Vec::new();
    while !rest.is_empty() {
        if path.len() == MAX_DEPTH {
            return Err(DecodeError::TooDeep(name.to_owned()));
        }
        let inner_end = rest
            .strip_prefix('[')
            .and_then(|r| r.find(']'))
            .ok_or_else(|| DecodeError::BadName(name.to_owned()))?;
        let inner = &rest[1..=inner_end];
        if inner.contains('[') {
            return Err(DecodeError::BadName(name.to_owned()));
        }
        path.push(if inner.is_empty() {
            Segment::Append
        } else {
            Segment::Key(inner)
        });
        rest = &rest[inner_end + 2..];
    }
    Ok((base, path))
}

fn insert(
    map: &mut BTreeMap<String, Node>,
    full_name: &str,
    key: &str,
    path: &[Segment<'_>],
    value: String,
) -> Result<(), DecodeError> {
    let conflict = || DecodeError::Conflict(full_name.to_owned());
    let Some((next, rest)) = path.split_first() else {
        // A repeated plain parameter: the last one wins, as in Rack and Stripe.
        match map.get(key) {
            Some(Node::Map(_)) | Some(Node::List(_)) => return Err(conflict()),
            _ => map.insert(key.to_owned(), Node::Str(value)),
        };
        return Ok(());
    };
    match next {
        Segment::Key(_) => {
            let child = map
                .entry(key.to_owned())
                .or_insert_with(|| Node::Map(BTreeMap::new()));
            let Node::Map(child) = child else {
                return Err(conflict());
            };
            let Segment::Key(child_key) = next else {
                unreachable!()
            };
            insert(child, full_name, child_key, rest, value)
        }
        Segment::Append => {
            let child = map
                .entry(key.to_owned())
                .or_insert_with(|| Node::List(Vec::new()));
            let Node::List(items) = child else {
                return Err(conflict());
            };
            append(items, full_name, rest, value)
        }
    }
}

/// `a[]=x` pushes `x`; `a[][k]=v` fills the last map until a key repeats,
/// then starts a new element (Rack's rule for lists of hashes).
fn append(
    items: &mut Vec<Node>,
    full_name: &str,
    rest: &[Segment<'_>],
    value: String,
) -> Result<(), DecodeError> {
    match rest.first() {
        None => {
            items.push(Node::Str(value));
            Ok(())
        }
        Some(Segment::Key(k)) => {
            let reuse_last = matches!(items.last(), Some(Node::Map(m)) if !m.contains_key(*k) || rest.len() > 1 && matches!(m.get(*k), Some(Node::Map(_))));
            if !reuse_last {
                items.push(Node::Map(BTreeMap::new()));
            }
            let Some(Node::Map(last)) = items.last_mut() else {
                return Err(DecodeError::Conflict(full_name.to_owned()));
            };
            insert(last, full_name, k, &rest[1..], value)
        }
        Some(Segment::Append) => Err(DecodeError::BadName(full_name.to_owned())),
    }
}

/// Percent-encodes a value for a URL query (unreserved characters stay).
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Node {
        Node::Str(v.to_owned())
    }

    fn map(entries: &[(&str, Node)]) -> Node {
        Node::Map(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn decoded(input: &str) -> Node {
        Node::Map(decode(input.as_bytes()).expect("decodes"))
    }

    #[test]
    fn bracket_forms() {
        let table: Vec<(&str, Node)> = vec![
            ("a=1", map(&[("a", s("1"))])),
            (
                "a[b][c]=",
                map(&[("a", map(&[("b", map(&[("c", s(""))]))]))]),
            ),
            (
                "a[]=x&a[]=y",
                map(&[("a", Node::List(vec![s("x"), s("y")]))]),
            ),
            ("a[0]=x", map(&[("a", map(&[("0", s("x"))]))])),
            (
                "items[0][price]=p1&items[1][price]=p2&items[1][quantity]=2",
                map(&[(
                    "items",
                    map(&[
                        ("0", map(&[("price", s("p1"))])),
                        ("1", map(&[("price", s("p2")), ("quantity", s("2"))])),
                    ]),
                )]),
            ),
            ("name=Jenny+Rosen", map(&[("name", s("Jenny Rosen"))])),
            ("name=Jenny%20Rosen", map(&[("name", s("Jenny Rosen"))])),
            (
                "expand%5B0%5D=customer",
                map(&[("expand", map(&[("0", s("customer"))]))]),
            ),
            (
                "expand%5B%5D=a&expand%5B%5D=b",
                map(&[("expand", Node::List(vec![s("a"), s("b")]))]),
            ),
            ("a=1&a=2", map(&[("a", s("2"))])),
            ("flag", map(&[("flag", s(""))])),
            ("&&a=1&", map(&[("a", s("1"))])),
            ("q=%E2%82%AC", map(&[("q", s("€"))])),
            (
                "l[][a]=1&l[][b]=2&l[][a]=3",
                map(&[(
                    "l",
                    Node::List(vec![
                        map(&[("a", s("1")), ("b", s("2"))]),
                        map(&[("a", s("3"))]),
                    ]),
                )]),
            ),
            ("e=a%3Db%26c", map(&[("e", s("a=b&c"))])),
        ];
        for (input, expected) in table {
            assert_eq!(decoded(input), expected, "input: {input}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let table: Vec<(&[u8], DecodeError)> = vec![
            (b"a=%", DecodeError::BadPercent),
            (b"a=%4", DecodeError::BadPercent),
            (b"a=%zz", DecodeError::BadPercent),
            (b"a=%ff%fe", DecodeError::BadUtf8),
            (b"a=\xff", DecodeError::BadUtf8),
            (b"a=x%00y", DecodeError::NulByte),
            (b"[a]=1", DecodeError::BadName("[a]".into())),
            (b"a[b=1", DecodeError::BadName("a[b".into())),
            (b"a[b]c=1", DecodeError::BadName("a[b]c".into())),
            (b"a[[b]]=1", DecodeError::BadName("a[[b]]".into())),
            (b"a=1&a[b]=2", DecodeError::Conflict("a[b]".into())),
            (b"a[b]=2&a=1", DecodeError::Conflict("a".into())),
            (b"a[]=1&a[b]=2", DecodeError::Conflict("a[b]".into())),
        ];
        for (input, expected) in table {
            assert_eq!(
                decode(input),
                Err(expected),
                "input: {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn limits() {
        let many = (0..=MAX_PAIRS)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(decode(many.as_bytes()), Err(DecodeError::TooManyPairs));
        let deep = format!("a{}=1", "[x]".repeat(MAX_DEPTH + 1));
        assert!(matches!(
            decode(deep.as_bytes()),
            Err(DecodeError::TooDeep(_))
        ));
        let ok = format!("a{}=1", "[x]".repeat(MAX_DEPTH));
        assert!(decode(ok.as_bytes()).is_ok());
    }
}

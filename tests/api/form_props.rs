//! Property tests for the form decoder: whatever a client encodes in
//! Stripe's bracket notation decodes back to the same tree, and no input at
//! all makes it panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use stripe_twin::http::form::{Node, decode};

/// Percent-encodes like the SDKs do (spaces as %20 or +, brackets either way).
fn encode_component(text: &str, plus_for_space: bool, encode_brackets: bool) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' if plus_for_space => out.push('+'),
            b'[' | b']' if !encode_brackets => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn flatten(prefix: &str, node: &Node, out: &mut Vec<(String, String)>) {
    match node {
        Node::Str(value) => out.push((prefix.to_owned(), value.clone())),
        Node::Map(map) => {
            for (key, child) in map {
                flatten(&format!("{prefix}[{key}]"), child, out);
            }
        }
        Node::List(items) => {
            for item in items {
                flatten(&format!("{prefix}[]"), item, out);
            }
        }
    }
}

fn encode_tree(tree: &BTreeMap<String, Node>, plus: bool, brackets: bool) -> String {
    let mut pairs = Vec::new();
    for (key, node) in tree {
        flatten(key, node, &mut pairs);
    }
    pairs
        .iter()
        .map(|(k, v)| {
            // Names keep their brackets literal or encoded; the text inside is encoded.
            let name = encode_component(k, plus, brackets);
            format!("{name}={}", encode_component(v, plus, true))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn key() -> impl Strategy<Value = String> {
    // Any text without brackets and NUL: names may hold spaces, unicode, '=' or '&'.
    "[^\\[\\]\u{0}]{1,12}"
}

fn value() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,20}"
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = value().prop_map(Node::Str);
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::btree_map(key(), inner, 1..5).prop_map(Node::Map),
            // Lists of plain values: `a[]=x&a[]=y`.
            prop::collection::vec(value().prop_map(Node::Str), 1..5).prop_map(Node::List),
        ]
    })
}

fn tree() -> impl Strategy<Value = BTreeMap<String, Node>> {
    prop::collection::btree_map(key(), node(), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_trees_decode_to_themselves(tree in tree(), plus in any::<bool>(), brackets in any::<bool>()) {
        let body = encode_tree(&tree, plus, brackets);
        prop_assert_eq!(decode(body.as_bytes()).expect("decodes"), tree);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn bracket_soup_never_panics(input in "[a-c\\[\\]=&%0-9+]{0,64}") {
        let _ = decode(input.as_bytes());
    }

    #[test]
    fn indexed_lists_keep_their_elements(values in prop::collection::vec(value(), 1..20)) {
        let body = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("items[{i}][price]={}", encode_component(v, false, true)))
            .collect::<Vec<_>>()
            .join("&");
        let decoded = decode(body.as_bytes()).unwrap();
        let Some(Node::Map(items)) = decoded.get("items") else { panic!("items is a map") };
        prop_assert_eq!(items.len(), values.len());
        for (i, v) in values.iter().enumerate() {
            let Some(Node::Map(item)) = items.get(&i.to_string()) else { panic!("item {i}") };
            prop_assert_eq!(item.get("price"), Some(&Node::Str(v.clone())));
        }
    }
}

#!/usr/bin/env python3
"""Writes tests/api/spec/schemas.json: the component schemas of Stripe's OpenAPI
spec that the objects stripe-twin returns can reach, stripped to what
tests/api/spec_shapes.rs checks (types, nullable, required, enums, properties,
items, anyOf/oneOf, additionalProperties).

The tests never read the spec itself (a clone of this repository has only
the generated file). Run it again when the spec changes:

    python3 scripts/gen_spec_schemas.py ../shared/stripe-openapi/spec3-2026-08-26.dahlia.json

An expandable field (`anyOf: [id string, $ref X, ...]`) keeps only the
alternatives stripe-twin can expand it to (the ROOTS below): an expansion
into anything else would be refused, so its schema is not needed, and
leaving it out keeps the file small (Connect accounts, sources, ...).
"""

import hashlib
import json
import sys
from pathlib import Path

# The object types stripe-twin returns, by component schema name.
ROOTS = [
    "balance_transaction",
    "charge",
    "checkout.session",
    "customer",
    "deleted_customer",
    "deleted_product",
    "deleted_webhook_endpoint",
    "error",
    "event",
    "invoice",
    "invoice_payment",
    "item",
    "line_item",
    "mandate",
    "payment_intent",
    "payment_method",
    # Not in the spec's subscription_item any more, but endive still sends
    # subscription_item.plan (tests/api/spec_shapes.rs checks it as a plan).
    "plan",
    "price",
    "product",
    "refund",
    "setup_intent",
    "subscription",
    "subscription_item",
    "test_helpers.test_clock",
    "deleted_test_helpers.test_clock",
    "webhook_endpoint",
]

# What the checks use; descriptions, lengths, formats and patterns are dropped.
KEPT = {
    "type",
    "nullable",
    "required",
    "enum",
    "properties",
    "items",
    "anyOf",
    "oneOf",
    "additionalProperties",
    "$ref",
    "x-stripeBypassValidation",
}

REF_PREFIX = "#/components/schemas/"


def ref_name(node):
    ref = node.get("$ref", "")
    return ref[len(REF_PREFIX):] if ref.startswith(REF_PREFIX) else None


def is_expandable(alternatives):
    """An expandable field: an ID string next to the objects it names."""
    return any(a.get("type") == "string" for a in alternatives) and any(
        ref_name(a) for a in alternatives
    )


def compact(node, refs):
    """The node with only the KEPT keys, collecting the schemas it names."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key not in KEPT:
            continue
        if key == "$ref":
            refs.add(ref_name(node))
            out[key] = ref_name(node)
        elif key == "properties":
            out[key] = {name: compact(p, refs) for name, p in value.items()}
        elif key in ("anyOf", "oneOf"):
            alternatives = value
            if is_expandable(value):
                alternatives = [
                    a for a in value if not ref_name(a) or ref_name(a) in ROOTS
                ]
            out[key] = [compact(a, refs) for a in alternatives]
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = compact(value, refs)
        else:
            out[key] = value
    return out


def reachable(schemas):
    todo, done = list(ROOTS), {}
    while todo:
        name = todo.pop()
        if name in done:
            continue
        refs = set()
        done[name] = compact(schemas[name], refs)
        todo.extend(sorted(refs - done.keys()))
    return done


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    source = Path(sys.argv[1])
    raw = source.read_bytes()
    spec = json.loads(raw)
    schemas = reachable(spec["components"]["schemas"])
    out = Path(__file__).resolve().parent.parent / "tests" / "api" / "spec" / "schemas.json"
    out.parent.mkdir(exist_ok=True)
    info = {
        "generated_by": "scripts/gen_spec_schemas.py",
        "source": source.name,
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "spec_version": spec["info"]["version"],
        "roots": ROOTS,
    }
    # One schema a line, sorted, so a regenerated file diffs readably.
    lines = [f'"info": {json.dumps(info, sort_keys=True)}']
    lines += [
        f"{json.dumps(name)}: {json.dumps(schemas[name], sort_keys=True, separators=(',', ':'))}"
        for name in sorted(schemas)
    ]
    body = "{\n" + lines[0] + ',\n"schemas": {\n' + ",\n".join(lines[1:]) + "\n}}\n"
    json.loads(body)
    out.write_text(body)
    print(f"{out}: {len(schemas)} schemas, {len(body):,} bytes")


if __name__ == "__main__":
    main()

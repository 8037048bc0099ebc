//! `docs/fleet-reference.md`, generated from the fleet and client JSON Schemas (`intelli schema
//! --reference`): every field of `fleet.yaml` and `<client>.yaml` with its type, default,
//! an example and its description. A test fails when the committed copy is stale; regenerate with
//! `cargo run -- schema --reference > docs/fleet-reference.md`.
//!
//! Examples: the field's default when it has one, else the value in this repository's example
//! fleet (`fleet/`), else the first allowed value, else one made from the type.

use std::fmt::Write as _;

use serde_json::Value;

/// The example fleet the examples are read from (this repository's own).
const EXAMPLE_FLEET: &str = include_str!("../../fleet/fleet.yaml");
const EXAMPLE_CLIENTS: &[&str] = &[
    include_str!("../../fleet/acme.yaml"),
    include_str!("../../fleet/globex.yaml"),
    include_str!("../../fleet/initech.yaml"),
];

/// Examples for fields the example fleet does not use (it has no checks, one account, no
/// adopted projects). A field with neither a default, a value in `fleet/` nor an entry here
/// gets a made-up example, which the test below refuses: add one here.
const HAND: &[(&str, &str)] = &[
    ("checks[].name", "site-serves-the-client"),
    ("checks[].http.path", "/"),
    ("checks[].http.body_contains", "\"{client}\""),
    (
        "checks[].sql.query",
        "\"select count(*) = 1 from public.companies where slug = '{client}'\"",
    ),
    (
        "cloudflare.accounts[].id",
        "0123456789abcdef0123456789abcdef",
    ),
    ("cloudflare.account_id", "0123456789abcdef0123456789abcdef"),
    ("pages_project", "acme-portal"),
    ("project_ref", "ptowpilxxespupuxxkid"),
];

struct Field {
    path: String,
    types: String,
    default: Option<Value>,
    description: String,
    example: Option<Value>,
}

/// The reference as markdown.
pub fn render() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Fleet file reference\n");
    let _ = writeln!(
        out,
        "Generated from the JSON Schemas of intelli's own types (`schema/fleet.schema.json`, \
         `schema/client.schema.json`) by `intelli schema --reference`; do not edit by hand. \
         Regenerate with `cargo run -- schema --reference > docs/fleet-reference.md` (a test \
         fails when this file is stale). A path `a.b` is the key `b` inside `a`; `<name>` is a \
         key you choose (a map); `[]` is an item of a list. Defaults are intelli's; a client \
         inherits `defaults:` of `fleet.yaml` for every field it does not set (maps merge key \
         by key, lists replace).\n"
    );
    let fleet_example = parse(EXAMPLE_FLEET);
    let client_examples: Vec<Value> = EXAMPLE_CLIENTS.iter().map(|t| parse(t)).collect();
    for (title, kind, examples) in [
        ("`fleet/fleet.yaml`", "fleet", vec![fleet_example]),
        ("`fleet/<client>.yaml`", "client", client_examples),
    ] {
        let Some(text) = super::render(kind) else {
            continue;
        };
        let Ok(schema) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let _ = writeln!(out, "## {title}\n");
        if let Some(d) = schema.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", one_paragraph(d));
        }
        let mut fields = Vec::new();
        walk(&schema, &schema, "", None, &mut fields, 0);
        for mut f in fields {
            if f.example.is_none() {
                f.example = examples.iter().find_map(|e| lookup(e, &f.path));
            }
            field(&mut out, &f);
        }
    }
    out
}

fn parse(text: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).unwrap_or(Value::Null)
}

/// The value at a dotted path in an example file; `<name>` takes the first key of a map and
/// `[]` the first item of a list.
fn lookup(root: &Value, path: &str) -> Option<Value> {
    let mut v = root;
    for part in path.split('.') {
        let (key, item) = match part.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (part, false),
        };
        v = if key == "<name>" {
            v.as_object()?.values().next()?
        } else {
            v.get(key)?
        };
        if item {
            v = v.as_array()?.first()?;
        }
    }
    (!v.is_null()).then(|| v.clone())
}

fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .unwrap_or(s),
        None => s,
    }
}

/// The schema without its `null` alternative, and whether it had one.
fn non_null<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
        let rest: Vec<&Value> = any
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if rest.len() == 1 {
            return resolve(root, rest[0]);
        }
    }
    resolve(root, s)
}

fn type_name(root: &Value, s: &Value) -> String {
    let s = non_null(root, s);
    if let Some(alts) = s
        .get("oneOf")
        .or_else(|| s.get("anyOf"))
        .and_then(Value::as_array)
    {
        let names: Vec<String> = alts.iter().map(|a| type_name(root, a)).collect();
        return names.join(" or ");
    }
    if let Some(c) = s.get("const") {
        return format!("`{c}`");
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    };
    let mut names = Vec::new();
    for t in types {
        names.push(match t {
            "array" => format!(
                "list of {}",
                s.get("items")
                    .map_or("values".into(), |i| type_name(root, i))
            ),
            "object" if s.get("properties").is_none() => match s.get("additionalProperties") {
                Some(v @ Value::Object(_)) => format!("map of {}", type_name(root, v)),
                _ => "map".into(),
            },
            "integer" => match s.get("minimum").and_then(Value::as_i64) {
                Some(0) => "integer ≥ 0".into(),
                _ => "integer".into(),
            },
            other => other.to_string(),
        });
    }
    if names.is_empty() {
        "any".into()
    } else {
        names.join(" or ")
    }
}

fn walk(
    root: &Value,
    s: &Value,
    prefix: &str,
    default: Option<&Value>,
    out: &mut Vec<Field>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    let s = non_null(root, s);
    let Some(props) = s.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, p) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let own_default = p
            .get("default")
            .or_else(|| default.and_then(|d| d.get(name)))
            .filter(|d| !d.is_null());
        let inner = non_null(root, p);
        let description = p
            .get("description")
            .or_else(|| inner.get("description"))
            .and_then(Value::as_str)
            .map(one_paragraph)
            .unwrap_or_default();
        let example = inner
            .get("examples")
            .and_then(|e| e.as_array()?.first().cloned());
        out.push(Field {
            path: path.clone(),
            types: type_name(root, p),
            default: own_default.cloned(),
            description,
            example,
        });
        // Nested objects, map values and list items have fields of their own.
        if inner.get("properties").is_some() {
            walk(root, inner, &path, own_default, out, depth + 1);
        } else if let Some(v @ Value::Object(_)) = inner.get("additionalProperties") {
            walk(root, v, &format!("{path}.<name>"), None, out, depth + 1);
        } else if let Some(items) = inner.get("items") {
            walk(root, items, &format!("{path}[]"), None, out, depth + 1);
        }
    }
}

/// A made-up example from the type, when neither a default nor the example fleet has one.
fn made_up(f: &Field) -> String {
    if f.types.starts_with('`') {
        return f
            .types
            .split(" or ")
            .next()
            .unwrap_or("")
            .trim_matches('`')
            .to_string();
    }
    let last = f
        .path
        .rsplit('.')
        .next()
        .unwrap_or("")
        .trim_end_matches("[]");
    match f.types.split(" or ").next().unwrap_or("") {
        "boolean" => "true".into(),
        t if t.starts_with("integer") => "1".into(),
        t if t.starts_with("list of") => "[]".into(),
        t if t.starts_with("map") => "{}".into(),
        "object" => "{}".into(),
        _ => format!("{last}-example"),
    }
}

fn field(out: &mut String, f: &Field) {
    let key = f
        .path
        .rsplit('.')
        .next()
        .unwrap_or(&f.path)
        .trim_end_matches("[]");
    let _ = writeln!(out, "### `{}`\n", f.path);
    let _ = writeln!(out, "- type: {}", f.types);
    match &f.default {
        Some(d) => {
            let _ = writeln!(out, "- default: `{}`", compact(d));
        }
        None => {
            let _ = writeln!(out, "- default: none");
        }
    }
    let hand = HAND
        .iter()
        .find(|(p, _)| *p == f.path)
        .map(|(_, e)| e.to_string());
    let example = match (f.example.as_ref().or(f.default.as_ref()), hand) {
        (Some(v), _) => compact(v),
        (None, Some(h)) => h,
        (None, None) => made_up(f),
    };
    let _ = writeln!(out, "- example: `{key}: {example}`");
    if !f.description.is_empty() {
        let _ = writeln!(out, "\n{}", f.description);
    }
    let _ = writeln!(out);
}

/// A value in YAML flow style (JSON is valid YAML), strings unquoted when plain.
fn compact(v: &Value) -> String {
    match v {
        Value::String(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:@*".contains(c))
                && !s.starts_with('*') =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

fn one_paragraph(s: &str) -> String {
    s.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    /// docs/fleet-reference.md is what the schemas give today (like the schema/ staleness test).
    #[test]
    fn the_committed_reference_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/fleet-reference.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == super::render(),
            "docs/fleet-reference.md is stale: run `cargo run -- schema --reference > docs/fleet-reference.md` and commit it"
        );
    }

    /// Every field has a type, a default line and a real example (not one made from its name).
    #[test]
    fn every_field_has_type_default_and_a_real_example() {
        let text = super::render();
        let sections: Vec<&str> = text.split("\n### ").skip(1).collect();
        assert!(sections.len() > 40, "{} fields", sections.len());
        for s in sections {
            let name = s.lines().next().unwrap_or_default();
            assert!(s.contains("\n- type: "), "{name}: no type");
            assert!(s.contains("\n- default: "), "{name}: no default line");
            let example = s
                .lines()
                .find(|l| l.starts_with("- example: "))
                .unwrap_or_default();
            assert!(
                !example.is_empty() && !example.contains("-example`"),
                "{name}: no example; add one to HAND in src/schema/reference.rs ({example})"
            );
        }
    }
}

//! Checking bodies against the vendors' OpenAPI 3.0 documents (vendored in tests/specs/) with
//! `jsonschema`.

use serde_json::{Map, Value, json};

/// OpenAPI 3.0 schema objects → JSON Schema. `nullable: true` admits `null` (a `null` type
/// next to a plain `type`, else `anyOf[…, null]`, which also covers a `$ref`, whose siblings
/// OpenAPI ignores); annotations JSON Schema does not know are dropped; property names are
/// never taken for keywords. With `strict`, an object that lists its properties refuses
/// undocumented ones (for responses: the simulator must not invent fields).
pub fn to_json_schema(v: &Value, strict: bool) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                match k.as_str() {
                    "nullable" | "discriminator" | "example" | "hideDefinitions" | "x-internal" => {
                    }
                    "$ref" => {
                        out.insert(k.clone(), val.clone());
                    }
                    "properties" => {
                        let props = val
                            .as_object()
                            .map(|p| {
                                p.iter()
                                    .map(|(pk, pv)| (pk.clone(), to_json_schema(pv, strict)))
                                    .collect::<Map<_, _>>()
                            })
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    _ => {
                        out.insert(k.clone(), to_json_schema(val, strict));
                    }
                }
            }
            if strict && out.contains_key("properties") && !out.contains_key("additionalProperties")
            {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            if m.get("nullable") == Some(&Value::Bool(true)) {
                return nullable(out);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| to_json_schema(x, strict)).collect()),
        other => other.clone(),
    }
}

fn nullable(mut out: Map<String, Value>) -> Value {
    let composed = ["$ref", "oneOf", "allOf", "anyOf"]
        .iter()
        .any(|k| out.contains_key(*k));
    match out.get("type").cloned() {
        Some(Value::String(t)) if !composed => {
            out.insert("type".into(), json!([t, "null"]));
            if let Some(Value::Array(e)) = out.get_mut("enum") {
                e.push(Value::Null);
            }
            Value::Object(out)
        }
        _ => json!({"anyOf": [Value::Object(out), {"type": "null"}]}),
    }
}

/// Assert that `body` matches `schema` (OpenAPI, converted non-strictly) with `schemas` (already
/// converted) as `#/components/schemas`, under draft 4 (the Cloudflare document's dialect).
pub fn assert_matches_draft4(schemas: &Value, schema: &Value, body: &Value, what: &str) {
    let root = json!({
        "components": {"schemas": schemas},
        "allOf": [to_json_schema(schema, false)],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&root)
        .unwrap_or_else(|e| panic!("{what}: schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: does not match the spec:\n{}\nbody: {body:#}",
        errors.join("\n")
    );
}

//! The old process's client registry (`clients.json`), read for `intelli import --from`.
//!
//! Two shapes are accepted: an array of objects, each with `slug`; or an object keyed by slug.
//! Each entry has `project_ref` and `domain` (strings), and may have `name` (the display name)
//! and `pages_project` (the Pages project's name when it is not `<name_prefix><slug>`).
//! Anything else is an error that names the file, line, entry and field, like every other
//! diagnostic. JSON is read through the same position-keeping parser as the fleet files (JSON
//! is YAML), so the positions come for free.

use std::path::Path;

use serde_json::Value;

use crate::diag::Diagnostics;
use crate::fleet::source::{SourceMap, parse_keep_map};

/// One client to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub slug: String,
    pub name: Option<String>,
    pub project_ref: String,
    pub domain: Option<String>,
    pub pages_project: Option<String>,
}

const FIELDS: [&str; 5] = ["slug", "name", "project_ref", "domain", "pages_project"];

/// Every entry of the registry at `file` (its text is `text`), or every problem in it.
pub fn parse(file: &Path, text: &str) -> Result<Vec<Entry>, Diagnostics> {
    let (map, value) = parse_keep_map::<Value>(file, text);
    let mut diags = Diagnostics::default();
    let value = match value {
        Ok(v) => v,
        Err(d) => {
            diags.push(d);
            return Err(diags);
        }
    };
    let mut entries = Vec::new();
    match &value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("[{i}]");
                if let Some(e) = entry(&map, &path, None, item, &mut diags) {
                    entries.push(e);
                }
            }
        }
        Value::Object(by_slug) => {
            for (slug, item) in by_slug {
                if let Some(e) = entry(&map, slug, Some(slug), item, &mut diags) {
                    entries.push(e);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => diags.push(map.diag(
            "",
            "a client registry is an array of objects (each with `slug`) or an object keyed by slug",
        )),
    }
    let mut seen = std::collections::BTreeSet::new();
    for e in &entries {
        if !seen.insert(e.slug.clone()) {
            diags.push(map.diag("", format!("client `{}` is listed twice", e.slug)));
        }
    }
    if diags.is_empty() {
        Ok(entries)
    } else {
        diags.sort();
        Err(diags)
    }
}

fn entry(
    map: &SourceMap,
    path: &str,
    key_slug: Option<&str>,
    item: &Value,
    diags: &mut Diagnostics,
) -> Option<Entry> {
    let Value::Object(fields) = item else {
        diags.push(map.diag(path, "an entry is an object with project_ref and domain"));
        return None;
    };
    let before = diags.len();
    for k in fields.keys() {
        if !FIELDS.contains(&k.as_str()) {
            let hint = crate::fleet::source::nearest(k, &FIELDS)
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            diags.push(map.diag(
                &format!("{path}.{k}"),
                format!(
                    "unknown field `{k}` (an entry has {}){hint}",
                    FIELDS.join(", ")
                ),
            ));
        }
    }
    let mut text = |field: &str, required: bool| -> Option<String> {
        match fields.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::String(_)) => {
                diags.push(map.diag(&format!("{path}.{field}"), "must not be empty"));
                None
            }
            Some(_) => {
                diags.push(map.diag(&format!("{path}.{field}"), "expected a string"));
                None
            }
            None if required => {
                diags.push(map.diag(path, format!("missing field `{field}`")));
                None
            }
            None => None,
        }
    };
    let slug = match key_slug {
        Some(k) => Some(k.to_string()),
        None => text("slug", true),
    };
    let name = text("name", false);
    let project_ref = text("project_ref", true);
    let domain = text("domain", false);
    let pages_project = text("pages_project", false);
    if let (Some(k), Some(Value::String(s))) = (key_slug, fields.get("slug"))
        && s.trim() != k
    {
        diags.push(map.diag(
            &format!("{path}.slug"),
            format!("`{s}` differs from the entry's key `{k}`"),
        ));
    }
    if diags.len() > before {
        return None;
    }
    Some(Entry {
        slug: slug?,
        name,
        project_ref: project_ref?,
        domain,
        pages_project,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes() {
        let f = Path::new("clients.json");
        let array = r#"[
  {"slug": "acme", "name": "ACME", "project_ref": "abcdefghijklmnopqrst", "domain": "acme.example.io"},
  {"slug": "globex", "project_ref": "bcdefghijklmnopqrstu", "pages_project": "globex-site"}
]"#;
        let e = parse(f, array).expect("array");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].name.as_deref(), Some("ACME"));
        assert_eq!(e[1].pages_project.as_deref(), Some("globex-site"));
        let object =
            r#"{"acme": {"project_ref": "abcdefghijklmnopqrst", "domain": "acme.example.io"}}"#;
        let e = parse(f, object).expect("object");
        assert_eq!(e[0].slug, "acme");
        assert_eq!(e[0].domain.as_deref(), Some("acme.example.io"));
    }

    #[test]
    fn errors_name_the_entry_and_field_with_a_line() {
        let f = Path::new("clients.json");
        let bad = "[\n  {\"slug\": \"acme\", \"project_ref\": \"abcdefghijklmnopqrst\"},\n  {\"slug\": \"globex\", \"projectref\": \"x\"},\n  {\"slug\": \"initech\", \"project_ref\": 5}\n]";
        let d = parse(f, bad).expect_err("bad");
        let text = d.to_string();
        assert!(
            text.contains("clients.json:3:") && text.contains("[1].projectref: unknown field"),
            "{text}"
        );
        assert!(text.contains("did you mean `project_ref`"), "{text}");
        assert!(text.contains("[1]: missing field `project_ref`"), "{text}");
        assert!(
            text.contains("clients.json:4:") && text.contains("[2].project_ref: expected a string"),
            "{text}"
        );
        let d = parse(f, "\"acme\"").expect_err("not a registry");
        assert!(d.to_string().contains("array of objects"));
        let d = parse(
            f,
            "{\"acme\": {\"slug\": \"acme2\", \"project_ref\": \"r\"}}",
        )
        .expect_err("key");
        assert!(d.to_string().contains("acme.slug: `acme2` differs"), "{d}");
    }
}

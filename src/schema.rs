//! JSON Schema of both fleet file kinds, generated from the Rust types so it cannot drift.
//!
//! A committed copy lives in `schema/` (editors find it through the `yaml-language-server`
//! comment at the top of each fleet file); a test fails when that copy is stale.

use super::model::{ClientFile, FleetFile};

/// The file kinds, with the name their committed schema file has under `schema/`.
pub const KINDS: &[(&str, &str)] = &[
    ("fleet", "fleet.schema.json"),
    ("client", "client.schema.json"),
];

/// Pretty JSON Schema for `kind` (`fleet` or `client`), newline-terminated.
pub fn render(kind: &str) -> Option<String> {
    let schema = match kind {
        "fleet" => schemars::schema_for!(FleetFile),
        "client" => schemars::schema_for!(ClientFile),
        _ => return None,
    };
    let mut text = serde_json::to_string_pretty(&schema).ok()?;
    text.push('\n');
    Some(text)
}

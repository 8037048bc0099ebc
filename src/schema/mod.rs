//! JSON Schemas generated from intelli's own types, so they cannot drift from the code: the two
//! fleet file kinds, the saved plan (`intelli plan --format json` / `--out`), the status report
//! and apply's summary (`apply --summary-json`).
//!
//! Committed copies live in `schema/` (editors find the fleet ones through the
//! `yaml-language-server` comment at the top of each fleet file; tools consuming plans can
//! validate against plan.schema.json); a test fails when a copy is stale.

use crate::fleet::model::{ClientFile, FleetFile};
use crate::plan::Plan;

/// Each kind, with the name of its committed file under `schema/`.
pub const KINDS: &[(&str, &str)] = &[
    ("fleet", "fleet.schema.json"),
    ("client", "client.schema.json"),
    ("plan", "plan.schema.json"),
    ("status", "status.schema.json"),
    ("summary", "summary.schema.json"),
];

/// Pretty JSON Schema for `kind`, newline-terminated.
pub fn render(kind: &str) -> Option<String> {
    let schema = match kind {
        "fleet" => schemars::schema_for!(FleetFile),
        "client" => schemars::schema_for!(ClientFile),
        "plan" => schemars::schema_for!(Plan),
        "status" => schemars::schema_for!(crate::status::StatusReport),
        "summary" => schemars::schema_for!(crate::apply::report::ApplySummary),
        _ => return None,
    };
    let mut text = serde_json::to_string_pretty(&schema).ok()?;
    text.push('\n');
    Some(text)
}

pub mod reference;

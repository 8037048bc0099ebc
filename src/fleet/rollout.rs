//! Waves (`rollout:` in fleet.yaml), client `labels:` and the fleet's `checks:`: their offline
//! checks, and which wave each client is in.
//!
//! Waves are computed from the fleet files every time (`waves`): a client is in the first wave
//! whose selector it matches, and the clients no wave selects are in an implicit last wave
//! named `rest`. Nothing about a rollout is stored anywhere else.

use std::collections::{BTreeMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{CheckSpec, FleetFile, Gate, MaxFailures, WaveSpec};
use super::source::SourceMap;
use super::validate::is_slug;
use crate::diag::Diagnostics;

/// The implicit last wave's name.
pub const REST: &str = "rest";

/// One wave of a rollout as plan shows it and apply runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Wave {
    pub name: String,
    /// The wave's clients in this run's selection, by slug, in slug order.
    pub clients: Vec<String>,
    /// Clients of the wave doing work at once (`None`: the run's parallelism).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    pub max_failures: Budget,
    pub gate: Gate,
    /// True for `rest`, the wave of the clients no wave of `rollout:` selects.
    #[serde(default)]
    pub implicit: bool,
}

/// How many failures a wave may have before the rollout halts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Halt when more than this many clients fail.
    Count(u32),
    /// Halt when failed × 100 > percent × the wave's clients in this run.
    Percent(u32),
}

impl Budget {
    /// Whether `failed` failures among `clients` exceed the budget.
    pub fn exceeded(self, failed: usize, clients: usize) -> bool {
        match self {
            Budget::Count(n) => failed > n as usize,
            Budget::Percent(p) => failed * 100 > p as usize * clients,
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Count(n) => write!(f, "{n}"),
            Budget::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Gate::Auto => "auto",
            Gate::Manual => "manual",
        })
    }
}

impl CheckSpec {
    /// One line for plan: what the check asks of each client.
    pub fn summary(&self) -> String {
        match (&self.http, &self.sql) {
            (Some(h), _) => {
                let body = h
                    .body_contains
                    .as_ref()
                    .map(|b| format!(", body contains {b:?}"))
                    .unwrap_or_default();
                format!(
                    "{}: GET https://<domain>{} → {}{body} (timeout {}s)",
                    self.name, h.path, h.status, h.timeout_secs
                )
            }
            (None, Some(s)) => format!(
                "{}: SQL (read-only) returns true: {}",
                self.name,
                s.query.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            (None, None) => format!("{}: (no check)", self.name),
        }
    }
}

/// `"10%"` → 10: a whole percentage from 0 to 100.
fn percent(s: &str) -> Option<u32> {
    let n = s.trim().strip_suffix('%')?.trim();
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse::<u32>().ok().filter(|p| *p <= 100)
}

fn budget(m: Option<&MaxFailures>) -> Budget {
    match m {
        None => Budget::Count(0),
        Some(MaxFailures::Count(n)) => Budget::Count(*n),
        // Validation refused anything else; 0% is the safe reading.
        Some(MaxFailures::Percent(s)) => Budget::Percent(percent(s).unwrap_or(0)),
    }
}

fn selects(w: &WaveSpec, slug: &str, labels: &BTreeMap<String, String>) -> bool {
    let by_client = w
        .clients
        .as_ref()
        .is_none_or(|cs| cs.iter().any(|c| c == slug));
    let by_labels = w
        .labels
        .as_ref()
        .is_none_or(|want| want.iter().all(|(k, v)| labels.get(k) == Some(v)));
    by_client && by_labels
}

/// The waves of `clients` (slug and labels, any order): `None` without `rollout:`. Waves that
/// hold none of `clients` (another selection) are kept, empty, so their order and names show.
/// `rest` is present only when some client is in no wave.
pub fn waves<'a>(
    fleet: &FleetFile,
    clients: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, String>)>,
) -> Option<Vec<Wave>> {
    let specs = fleet.rollout.as_ref()?;
    let mut waves: Vec<Wave> = specs
        .iter()
        .map(|w| Wave {
            name: w.name.clone(),
            clients: Vec::new(),
            parallel: w.parallel,
            max_failures: budget(w.max_failures.as_ref()),
            gate: w.gate,
            implicit: false,
        })
        .collect();
    let mut rest = Vec::new();
    for (slug, labels) in clients {
        match specs.iter().position(|w| selects(w, slug, labels)) {
            Some(i) => waves[i].clients.push(slug.to_string()),
            None => rest.push(slug.to_string()),
        }
    }
    if !rest.is_empty() {
        waves.push(Wave {
            name: REST.into(),
            clients: rest,
            parallel: None,
            max_failures: Budget::Count(0),
            gate: Gate::Auto,
            implicit: true,
        });
    }
    for w in &mut waves {
        w.clients.sort();
    }
    Some(waves)
}

/// `rollout:` against the fleet's client files (slug and labels of every file that parsed).
pub(super) fn check(
    fleet: &FleetFile,
    map: &SourceMap,
    clients: &[(String, BTreeMap<String, String>)],
    diags: &mut Diagnostics,
) {
    let Some(specs) = &fleet.rollout else {
        return;
    };
    if specs.is_empty() {
        diags.push(map.diag(
            "rollout",
            "lists no wave: give at least one, or leave `rollout:` out for a single wave",
        ));
        return;
    }
    let known: HashSet<&str> = clients.iter().map(|(s, _)| s.as_str()).collect();
    let mut names = HashSet::new();
    let assigned = waves(fleet, clients.iter().map(|(s, l)| (s.as_str(), l)));
    for (i, w) in specs.iter().enumerate() {
        let field = format!("rollout[{i}]");
        if !is_slug(&w.name) {
            diags.push(map.diag(
                &format!("{field}.name"),
                format!("`{}` is not a valid wave name: use lowercase letters, digits and hyphens, starting with a letter", w.name),
            ));
        } else if w.name == REST {
            diags.push(map.diag(
                &format!("{field}.name"),
                "`rest` is the implicit last wave (the clients no wave selects); pick another name",
            ));
        } else if !names.insert(w.name.as_str()) {
            diags.push(map.diag(
                &format!("{field}.name"),
                format!("wave `{}` is defined twice", w.name),
            ));
        }
        if w.clients.is_none() && w.labels.is_none() {
            diags.push(map.diag(
                &field,
                "a wave needs a selector: `clients:` and/or `labels:` (clients no wave selects are in the implicit last wave `rest`)",
            ));
            continue;
        }
        let mut unknown = false;
        for (j, c) in w.clients.iter().flatten().enumerate() {
            if !known.contains(c.as_str()) {
                unknown = true;
                let hint = super::source::nearest(c, &known.iter().copied().collect::<Vec<_>>())
                    .map(|n| format!(", did you mean `{n}`?"))
                    .unwrap_or_default();
                diags.push(map.diag(
                    &format!("{field}.clients[{j}]"),
                    format!("no client named `{c}` in the fleet{hint}"),
                ));
            }
        }
        if let Some(MaxFailures::Percent(p)) = &w.max_failures
            && percent(p).is_none()
        {
            diags.push(map.diag(
                &format!("{field}.max_failures"),
                format!("`{p}` is not a percentage: write a whole number from 0% to 100% (e.g. \"10%\"), or a count"),
            ));
        }
        if w.parallel == Some(0) {
            diags.push(map.diag(&format!("{field}.parallel"), "must be at least 1"));
        }
        let empty = assigned
            .as_ref()
            .and_then(|ws| ws.get(i))
            .is_some_and(|wave| wave.clients.is_empty());
        if empty && !unknown {
            let selected = clients.iter().any(|(s, l)| selects(w, s, l));
            diags.push(map.diag(
                &field,
                if selected {
                    format!(
                        "wave `{}` is empty: every client it selects is in an earlier wave",
                        w.name
                    )
                } else {
                    format!("wave `{}` is empty: no client matches its selector", w.name)
                },
            ));
        }
    }
}

/// A client file's `labels:`: keys and values are non-empty and printable without quoting.
pub(super) fn check_labels(
    labels: Option<&BTreeMap<String, String>>,
    map: &SourceMap,
    diags: &mut Diagnostics,
) {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    };
    for (k, v) in labels.into_iter().flatten() {
        if !ok(k) {
            diags.push(map.diag(
                &format!("labels.{k}"),
                format!("`{k}` is not a label name: 1–63 letters, digits, `-`, `_`, `.` or `/`"),
            ));
        } else if !ok(v) {
            diags.push(map.diag(
                &format!("labels.{k}"),
                format!("`{v}` is not a label value: 1–63 letters, digits, `-`, `_`, `.` or `/`"),
            ));
        }
    }
}

/// The fleet's `checks:`.
pub(super) fn check_checks(checks: &[CheckSpec], map: &SourceMap, diags: &mut Diagnostics) {
    let mut names = HashSet::new();
    for (i, c) in checks.iter().enumerate() {
        let field = format!("checks[{i}]");
        if c.name.trim().is_empty() {
            diags.push(map.diag(&format!("{field}.name"), "must not be empty"));
        } else if !names.insert(c.name.as_str()) {
            diags.push(map.diag(
                &format!("{field}.name"),
                format!("check `{}` is defined twice", c.name),
            ));
        }
        match (&c.http, &c.sql) {
            (Some(_), Some(_)) | (None, None) => diags.push(map.diag(
                &field,
                "give exactly one of `http:` (a path on the client's domain) or `sql:` (a read-only query)",
            )),
            (Some(h), None) => {
                if !h.path.starts_with('/') || h.path.contains(char::is_whitespace) {
                    diags.push(map.diag(
                        &format!("{field}.http.path"),
                        format!("`{}` is not a path: it starts with `/` and has no spaces", h.path),
                    ));
                }
                if !(100..=599).contains(&h.status) {
                    diags.push(map.diag(
                        &format!("{field}.http.status"),
                        format!("{} is not an HTTP status (100–599)", h.status),
                    ));
                }
                if !(1..=300).contains(&h.timeout_secs) {
                    diags.push(map.diag(
                        &format!("{field}.http.timeout_secs"),
                        "must be from 1 to 300 seconds",
                    ));
                }
            }
            (None, Some(s)) => {
                if s.query.trim().is_empty() {
                    diags.push(map.diag(&format!("{field}.sql.query"), "must not be empty"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_halt_only_when_failures_are_greater() {
        assert!(!Budget::Count(0).exceeded(0, 3));
        assert!(Budget::Count(0).exceeded(1, 3));
        assert!(!Budget::Count(1).exceeded(1, 3));
        assert!(Budget::Count(1).exceeded(2, 3));
        // 10% of 10 is 1 failure allowed; of 5, none (5 × 10 = 50 < 100).
        assert!(!Budget::Percent(10).exceeded(1, 10));
        assert!(Budget::Percent(10).exceeded(2, 10));
        assert!(Budget::Percent(10).exceeded(1, 5));
        assert!(!Budget::Percent(100).exceeded(5, 5));
    }

    #[test]
    fn percentages_are_whole_numbers_up_to_100() {
        assert_eq!(percent("10%"), Some(10));
        assert_eq!(percent(" 0% "), Some(0));
        assert_eq!(percent("100%"), Some(100));
        assert_eq!(percent("101%"), None);
        assert_eq!(percent("10"), None);
        assert_eq!(percent("1.5%"), None);
        assert_eq!(percent("-1%"), None);
    }

    fn fleet(rollout: &str) -> FleetFile {
        let yaml = format!(
            "base_domain: a.io\nsupabase: {{organization_slug: o}}\ncloudflare: {{zone: a.io, account_id: x}}\nrollout:\n{rollout}"
        );
        serde_saphyr::from_str(&yaml).expect("fleet parses")
    }

    #[test]
    fn a_client_is_in_the_first_wave_it_matches_and_the_rest_last() {
        let f = fleet(
            "  - {name: canary, clients: [b]}\n  - {name: early, labels: {tier: early}, max_failures: 1}\n  - {name: big, labels: {tier: early}, gate: manual}\n",
        );
        let early: BTreeMap<String, String> = [("tier".into(), "early".into())].into();
        let none = BTreeMap::new();
        let clients = [("a", &early), ("b", &early), ("c", &none), ("d", &early)];
        let waves = waves(&f, clients).expect("a rollout");
        let got: Vec<(&str, Vec<&str>, bool)> = waves
            .iter()
            .map(|w| {
                (
                    w.name.as_str(),
                    w.clients.iter().map(String::as_str).collect(),
                    w.implicit,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("canary", vec!["b"], false),
                ("early", vec!["a", "d"], false),
                ("big", vec![], false),
                ("rest", vec!["c"], true),
            ]
        );
        assert_eq!(waves[1].max_failures, Budget::Count(1));
        assert_eq!(waves[2].gate, Gate::Manual);
    }
}

//! Reading one YAML file into typed values while keeping a map from field paths to positions.
//!
//! serde-saphyr reports *where* a parse error is but not *which field* it is in, and typed values
//! forget where they came from. So each file is read twice: once into a position-aware generic
//! tree ([`SourceMap`]) and once into the typed struct. The tree answers "which field is at 7:15"
//! (for parse errors) and "where is `domain`" (for semantic errors found later).

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Pos};

/// One node of the generic tree: its path, where it starts, and its text when it is a scalar.
#[derive(Debug, Clone)]
pub struct SourceNode {
    pub path: String,
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// The key of a mapping entry; its path is the entry's.
    Key,
    /// A mapping or a sequence.
    Container,
    Scalar(String),
    Null,
}

/// Positions of every key and value of one YAML file, by dotted path.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    pub file: PathBuf,
    nodes: Vec<SourceNode>,
}

impl SourceMap {
    /// Where the value at `path` starts, or the nearest ancestor that exists in the file.
    pub fn pos_of(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            // A scalar is best pointed at by its value, a mapping or list by its key.
            let rank = |k: &NodeKind| match k {
                NodeKind::Scalar(_) | NodeKind::Null => 0,
                NodeKind::Key => 1,
                NodeKind::Container => 2,
            };
            if let Some(n) = self
                .nodes
                .iter()
                .filter(|n| n.path == p)
                .min_by_key(|n| rank(&n.kind))
            {
                return Some(n.pos);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.nodes.first().map(|n| n.pos),
            }
        }
    }

    /// The deepest field that starts at or before `pos`: the field a parse error is about.
    pub fn path_at(&self, pos: Pos) -> Option<&str> {
        self.nodes
            .iter()
            .filter(|n| n.pos <= pos)
            .max_by_key(|n| (n.pos, n.path.len()))
            .map(|n| n.path.as_str())
    }

    /// Ancestors of the field at `pos`, deepest first, ending with the root (`""`).
    fn ancestors_at(&self, pos: Pos) -> Vec<String> {
        let Some(path) = self.path_at(pos) else {
            return vec![String::new()];
        };
        let mut out = vec![path.to_string()];
        for (i, c) in path.char_indices().rev() {
            if c == '.' || c == '[' {
                out.push(path[..i].to_string());
            }
        }
        out.push(String::new());
        out
    }

    /// Every scalar in the file with its path, for checks that apply to all values alike.
    pub fn scalars(&self) -> impl Iterator<Item = &SourceNode> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Scalar(_)))
    }

    pub fn diag(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.pos_of(path), path, message)
    }
}

/// A parsed file: its typed value and its source map.
pub struct Parsed<T> {
    pub value: T,
    pub map: SourceMap,
}

/// Parse `text` (read from `file`) into `T`, turning any failure into a positioned diagnostic.
pub fn parse<T: DeserializeOwned + JsonSchema>(
    file: &Path,
    text: &str,
) -> Result<Parsed<T>, Diagnostic> {
    let (map, value) = parse_keep_map(file, text);
    value.map(|value| Parsed { value, map })
}

/// Like [`parse`], but the source map is returned even when the typed parse fails (it is empty
/// when the file is not even well-formed YAML), so value-level checks can still run on it.
pub fn parse_keep_map<T: DeserializeOwned + JsonSchema>(
    file: &Path,
    text: &str,
) -> (SourceMap, Result<T, Diagnostic>) {
    let mut map = SourceMap {
        file: file.to_path_buf(),
        nodes: Vec::new(),
    };
    let options = serde_saphyr::options! {};
    match serde_saphyr::from_str_with_options::<Spanned<RawNode>>(text, options.clone()) {
        Ok(root) => flatten(&root, String::new(), &mut map.nodes),
        Err(e) => {
            let d = saphyr_diag(file, &map, &e, None);
            return (map, Err(d));
        }
    }
    let value = serde_saphyr::from_str_with_options::<T>(text, options).map_err(|e| {
        let schema = serde_json::to_value(schemars::schema_for!(T)).ok();
        saphyr_diag(file, &map, &e, schema.as_ref())
    });
    (map, value)
}

/// Whether the object type at `path` in `schema` has a property `field`.
fn schema_declares(schema: &serde_json::Value, path: &str, field: &str) -> bool {
    let mut node = schema;
    let segments = path
        .split(['.', '['])
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches(']'));
    node = resolve(schema, node);
    for seg in segments {
        let next = if seg.chars().all(|c| c.is_ascii_digit()) {
            node.get("items")
        } else {
            node.get("properties")
                .and_then(|p| p.get(seg))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
        };
        match next {
            Some(n) => node = resolve(schema, n),
            None => return false,
        }
    }
    node.get("properties").and_then(|p| p.get(field)).is_some()
}

/// Follows `$ref` and picks the object alternative of an `anyOf` (how `Option<T>` is written).
fn resolve<'a>(
    root: &'a serde_json::Value,
    mut node: &'a serde_json::Value,
) -> &'a serde_json::Value {
    for _ in 0..8 {
        if let Some(r) = node.get("$ref").and_then(|r| r.as_str()) {
            match r.strip_prefix("#/").map(|p| root.pointer(&format!("/{p}"))) {
                Some(Some(target)) => node = target,
                _ => return node,
            }
        } else if let Some(alts) = node
            .get("anyOf")
            .or_else(|| node.get("oneOf"))
            .and_then(|a| a.as_array())
        {
            match alts
                .iter()
                .find(|a| a.get("type").and_then(|t| t.as_str()) != Some("null"))
            {
                Some(a) => node = a,
                None => return node,
            }
        } else {
            return node;
        }
    }
    node
}

fn saphyr_diag(
    file: &Path,
    map: &SourceMap,
    e: &serde_saphyr::Error,
    schema: Option<&serde_json::Value>,
) -> Diagnostic {
    let pos = e.location().filter(|l| l.line() > 0).map(|l| Pos {
        line: l.line(),
        column: l.column(),
    });
    let raw = e.without_snippet().to_string();
    let msg = strip_location(&raw);
    // serde-saphyr's position for a missing field is somewhere inside or after the mapping that
    // lacks it; the mapping is the deepest enclosing one whose type declares that field.
    if let Some(rest) = msg.strip_prefix("missing field `")
        && let Some(schema) = schema
    {
        let name = rest.trim_end_matches('`');
        let parent = pos
            .map(|p| map.ancestors_at(p))
            .unwrap_or_else(|| vec![String::new()])
            .into_iter()
            .find(|a| schema_declares(schema, a, name))
            .unwrap_or_default();
        let field = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        };
        let at = if parent.is_empty() {
            Some(Pos { line: 1, column: 1 })
        } else {
            map.pos_of(&parent)
        };
        return Diagnostic::new(file, at, field, format!("missing required field `{name}`"));
    }
    let field = pos.and_then(|p| map.path_at(p)).unwrap_or("").to_string();
    Diagnostic::new(file, pos, field, humanize(msg))
}

/// serde-saphyr puts the position in its messages ("line N column M: …" or "… at line N,
/// column M"); we print positions ourselves.
fn strip_location(msg: &str) -> &str {
    let mut msg = msg.trim().trim_start_matches("error: ");
    if let Some(i) = msg.rfind(" at line ")
        && msg[i..].contains(", column ")
    {
        msg = &msg[..i];
    }
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some(i) = rest.find(": ")
        && rest[..i].contains("column")
    {
        return &rest[i + 2..];
    }
    msg
}

/// Rewords the parser's terse messages and adds "did you mean" to unknown fields.
fn humanize(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some(end) = rest.find('`')
    {
        let field = &rest[..end];
        let expected: Vec<&str> = rest
            .split_once("expected one of ")
            .map(|(_, list)| list.split(", ").map(|s| s.trim_matches('`')).collect())
            .or_else(|| {
                rest.split_once("expected `")
                    .map(|(_, one)| vec![one.trim_end_matches('`')])
            })
            .unwrap_or_default();
        let mut out = format!("unknown field `{field}`");
        if let Some(best) = nearest(field, &expected) {
            out.push_str(&format!(", did you mean `{best}`?"));
        }
        if !expected.is_empty() {
            out.push_str(&format!(" (known fields: {})", expected.join(", ")));
        }
        return out;
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        return format!("duplicate key `{key}`");
    }
    match msg {
        "invalid boolean" => "expected a boolean (true or false)".into(),
        "expected string scalar" => "expected a string".into(),
        other => other.to_string(),
    }
}

/// The known name closest to `word`, if any is close enough to be a plausible typo.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn flatten(node: &Spanned<RawNode>, path: String, out: &mut Vec<SourceNode>) {
    let pos = Pos {
        line: node.referenced.line(),
        column: node.referenced.column(),
    };
    match &node.value {
        RawNode::Map(entries) => {
            out.push(SourceNode {
                path: path.clone(),
                pos,
                kind: NodeKind::Container,
            });
            for (key, value) in entries {
                let child = if path.is_empty() {
                    key.value.clone()
                } else {
                    format!("{path}.{}", key.value)
                };
                out.push(SourceNode {
                    path: child.clone(),
                    pos: Pos {
                        line: key.referenced.line(),
                        column: key.referenced.column(),
                    },
                    kind: NodeKind::Key,
                });
                flatten(value, child, out);
            }
        }
        RawNode::Seq(items) => {
            out.push(SourceNode {
                path: path.clone(),
                pos,
                kind: NodeKind::Container,
            });
            for (i, item) in items.iter().enumerate() {
                flatten(item, format!("{path}[{i}]"), out);
            }
        }
        RawNode::Scalar(s) => out.push(SourceNode {
            path,
            pos,
            kind: NodeKind::Scalar(s.clone()),
        }),
        RawNode::Null => out.push(SourceNode {
            path,
            pos,
            kind: NodeKind::Null,
        }),
    }
}

/// A schema-less YAML value whose children remember their positions.
#[derive(Debug)]
enum RawNode {
    Map(Vec<(Spanned<String>, Spanned<RawNode>)>),
    Seq(Vec<Spanned<RawNode>>),
    Scalar(String),
    Null,
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<RawKey>>()? {
            let value = map.next_value::<Spanned<RawNode>>()?;
            let key = Spanned {
                value: key.value.0,
                referenced: key.referenced,
                defined: key.defined,
            };
            entries.push((key, value));
        }
        Ok(RawNode::Map(entries))
    }
}

/// A mapping key of any scalar type, as text.
struct RawKey(String);

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match RawNode::deserialize(d)? {
            RawNode::Scalar(s) => Ok(RawKey(s)),
            RawNode::Null => Ok(RawKey("null".into())),
            _ => Err(de::Error::custom("mapping keys must be scalars")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        client: String,
        supabase: Option<Sup>,
    }
    #[derive(Deserialize, Debug, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sup {
        region: Option<String>,
        list: Option<Vec<Item>>,
    }
    #[derive(Deserialize, Debug, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        public: bool,
    }

    fn err(text: &str) -> String {
        match parse::<Doc>(Path::new("f.yaml"), text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(d) => d.to_string(),
        }
    }

    #[test]
    fn type_error_names_the_nested_field() {
        let text = "client: a\nsupabase:\n  list:\n    - public: true\n    - public: maybe\n";
        assert_eq!(
            err(text),
            "f.yaml:5:15: supabase.list[1].public: expected a boolean (true or false)"
        );
    }

    #[test]
    fn unknown_field_suggests_the_nearest() {
        let e = err("client: a\nsupabase:\n  regoin: x\n");
        assert!(
            e.starts_with(
                "f.yaml:3:3: supabase.regoin: unknown field `regoin`, did you mean `region`?"
            ),
            "{e}"
        );
    }

    #[test]
    fn missing_field_points_at_its_mapping() {
        #[derive(Deserialize, Debug, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Outer {
            a: Inner,
            b: Option<Inner>,
            top: String,
        }
        #[derive(Deserialize, Debug, JsonSchema)]
        #[allow(dead_code)]
        struct Inner {
            need: String,
            other: Option<String>,
        }
        let e = |t: &str| {
            parse::<Outer>(Path::new("f.yaml"), t)
                .err()
                .map(|d| d.to_string())
        };
        let cases = [
            (
                "a:\n  other: x\nb:\n  need: y\ntop: z\n",
                "f.yaml:1:1: a.need: missing required field `need`",
            ),
            (
                "a:\n  need: x\nb:\n  need: y\n",
                "f.yaml:1:1: top: missing required field `top`",
            ),
            (
                "top: z\na:\n  need: x\nb:\n  other: y\n",
                "f.yaml:4:1: b.need: missing required field `need`",
            ),
            // The field is declared by the root only, even though the error is inside `a`.
            (
                "a:\n  need: x\n  other: y\n",
                "f.yaml:1:1: top: missing required field `top`",
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(e(yaml).as_deref(), Some(want), "{yaml:?}");
        }
    }

    #[test]
    fn paths_resolve_to_positions() {
        let p = parse::<Doc>(Path::new("f.yaml"), "client: a\nsupabase:\n  region: x\n").unwrap();
        assert_eq!(
            p.map.pos_of("supabase.region"),
            Some(Pos {
                line: 3,
                column: 11
            })
        );
        // A path that does not exist falls back to its nearest ancestor.
        assert_eq!(
            p.map.pos_of("supabase.buckets"),
            Some(Pos { line: 2, column: 1 })
        );
    }
}

//! A markdown plan cut into pull-request comments (`intelli plan --comment-dir DIR`).
//!
//! GitHub refuses a comment body over 65,536 characters. A plan is rendered as blocks
//! ([`super::render::markdown_blocks`]: the header, each group or client section, the list of
//! clients without changes) that each leave no code fence and no `<details>` open; parts are
//! filled with whole blocks in order. A block larger than a part on its own (one client with
//! hundreds of actions) is cut at line boundaries: the part it leaves closes the fence and the
//! `<details>` it was inside, and the next part opens them again (the summary marked
//! "continued"), so every part renders on its own. A line longer than a part (never rendered by
//! intelli at the default size) is cut at a character boundary.
//!
//! Every part starts with a hidden marker, `<!-- intelli-plan part 2/3 -->` (with the shard
//! when the plan is a shard's: `<!-- intelli-plan shard 2/4 part 1/3 -->`), by which the
//! workflow (`examples/github/workflows/plan.yml`) finds the comment to update in place. Parts
//! are measured in bytes, which are never fewer than characters, so a part under the limit in
//! bytes is under GitHub's limit in characters; the limit includes the marker and the
//! "part k of n" lines.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// GitHub's limit on a comment body, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// The default `--max-comment-bytes`: GitHub's limit with 536 to spare for anything a workflow
/// adds around a part (ours adds nothing).
pub const DEFAULT_MAX_COMMENT_BYTES: usize = 65_000;

/// The smallest limit accepted: room for the marker and part lines, a reopened `<details>`
/// and fence, and some text.
pub const MIN_MAX_COMMENT_BYTES: usize = 600;

/// The marker's fixed start; the workflow looks for it.
pub const MARKER_PREFIX: &str = "<!-- intelli-plan";

#[derive(Debug, thiserror::Error)]
pub enum CommentError {
    #[error(
        "--max-comment-bytes {0} is too small: a part needs at least {MIN_MAX_COMMENT_BYTES} bytes \
         (GitHub allows {GITHUB_COMMENT_LIMIT} characters)"
    )]
    TooSmall(usize),
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The hidden marker of part `k` of `n`; `shard` is the plan's shard (`2/4`) if any.
pub fn marker(shard: Option<&str>, k: usize, n: usize) -> String {
    match shard {
        Some(s) => format!("{MARKER_PREFIX} shard {s} part {k}/{n} -->"),
        None => format!("{MARKER_PREFIX} part {k}/{n} -->"),
    }
}

/// What a part adds around its content.
fn head(shard: Option<&str>, k: usize, n: usize) -> String {
    let mut out = marker(shard, k, n);
    out.push('\n');
    if n > 1 {
        let _ = writeln!(out, "_intelli plan, part {k} of {n}._\n");
    }
    out
}

fn tail(k: usize, n: usize) -> String {
    if k < n {
        format!("\n_Continued in part {} of {n}._\n", k + 1)
    } else {
        String::new()
    }
}

/// The most [`head`] + [`tail`] can take: part numbers up to 6 digits.
fn overhead(shard: Option<&str>) -> usize {
    const BIG: usize = 999_999;
    head(shard, BIG, BIG).len() + tail(BIG - 1, BIG).len()
}

/// Cut the markdown `blocks` of a plan into comment bodies of at most `max` bytes each (see
/// the module's documentation). Always at least one part.
pub fn split(
    blocks: &[String],
    max: usize,
    shard: Option<&str>,
) -> Result<Vec<String>, CommentError> {
    if max < MIN_MAX_COMMENT_BYTES {
        return Err(CommentError::TooSmall(max));
    }
    let budget = max - overhead(shard);
    let mut contents: Vec<String> = Vec::new();
    let mut current = String::new();
    for block in blocks {
        if block.len() <= budget {
            if current.len() + block.len() > budget {
                contents.push(std::mem::take(&mut current));
            }
            current.push_str(block);
            continue;
        }
        // Too big for a part of its own: its pieces fill parts, starting with the current one.
        for piece in split_block(block, budget, budget - current.len()) {
            if current.len() + piece.len() > budget {
                contents.push(std::mem::take(&mut current));
            }
            current.push_str(&piece);
        }
    }
    if !current.is_empty() || contents.is_empty() {
        contents.push(current);
    }
    let n = contents.len();
    Ok(contents
        .into_iter()
        .enumerate()
        .map(|(i, body)| format!("{}{body}{}", head(shard, i + 1, n), tail(i + 1, n)))
        .collect())
}

/// What is open at a point of a block: the `<details>` lines, outermost first, and the fence
/// line when inside a code block.
#[derive(Default, Clone)]
struct Open {
    details: Vec<String>,
    fence: Option<String>,
}

impl Open {
    fn track(&mut self, line: &str) {
        let t = line.trim_start();
        if t.starts_with("```") {
            self.fence = match self.fence {
                Some(_) => None,
                None => Some(t.trim_end().to_string()),
            };
            return;
        }
        if self.fence.is_some() {
            return;
        }
        if t.starts_with("<details") {
            self.details.push(t.trim_end().to_string());
        }
        if t.contains("</details>") {
            self.details.pop();
        }
    }

    /// Lines that close what is open, innermost first.
    fn closing(&self) -> String {
        let mut out = String::new();
        if self.fence.is_some() {
            out.push_str("```\n");
        }
        for _ in &self.details {
            out.push_str("\n</details>\n");
        }
        out
    }

    /// Lines that open again what [`Open::closing`] closed, the summaries marked "continued".
    fn reopening(&self) -> String {
        let mut out = String::new();
        for d in &self.details {
            let line = match d.find("</summary>") {
                Some(at) => format!("{} (continued){}", &d[..at], &d[at..]),
                None => d.clone(),
            };
            let _ = writeln!(out, "{line}\n");
        }
        if let Some(f) = &self.fence {
            let _ = writeln!(out, "{f}");
        }
        out
    }

    /// The most [`Open::closing`] + [`Open::reopening`] can take for what is open now.
    fn cost(&self) -> usize {
        self.closing().len() + self.reopening().len()
    }
}

/// Cut one block at line boundaries into pieces of at most `budget` bytes, the first at most
/// `first` (what is left of the current part; it may come out empty). Each piece closes what
/// it leaves open and the next opens it again.
fn split_block(block: &str, budget: usize, first: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut open = Open::default();
    let mut piece = String::new();
    let mut room = first;
    // Whether the piece holds more than blank lines and the openings of fences and
    // `<details>`: closing a piece without is pointless.
    let mut has_content = false;
    for line in block.split_inclusive('\n') {
        let mut rest = line;
        loop {
            // After this line, what stays open must still be closable within the piece.
            let mut after = open.clone();
            after.track(rest);
            let fits = piece.len() + rest.len() + after.closing().len() <= room;
            if fits {
                let opens = after.fence.is_some() && open.fence.is_none()
                    || after.details.len() > open.details.len();
                has_content |= !rest.trim().is_empty() && !opens;
                piece.push_str(rest);
                open = after;
                break;
            }
            if has_content || room < budget {
                piece.push_str(&open.closing());
                pieces.push(std::mem::take(&mut piece));
                piece = open.reopening();
                room = budget;
                has_content = false;
                continue;
            }
            // A fresh piece and the line still does not fit: cut the line itself.
            let take =
                floor_char_boundary(rest, room.saturating_sub(piece.len() + open.cost() + 1));
            let take = if take == 0 {
                rest.chars().next().map_or(rest.len(), char::len_utf8)
            } else {
                take
            };
            piece.push_str(&rest[..take]);
            piece.push('\n');
            has_content = true;
            rest = &rest[take..];
            if rest.is_empty() {
                break;
            }
        }
    }
    piece.push_str(&open.closing());
    pieces.push(piece);
    pieces.retain(|p| !p.is_empty());
    pieces
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Write the parts as `plan-1.md`, `plan-2.md`, … in `dir` (made if missing), after removing
/// the `plan-<n>.md` files an earlier run left there, so the directory holds exactly this
/// plan's parts. Returns the paths written.
pub fn write_parts(dir: &Path, parts: &[String]) -> Result<Vec<PathBuf>, CommentError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CommentError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if is_part_name(&entry.file_name().to_string_lossy()) {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
        }
    }
    let mut written = Vec::new();
    for (i, text) in parts.iter().enumerate() {
        let path = dir.join(format!("plan-{}.md", i + 1));
        std::fs::write(&path, text).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// `plan-<digits>.md`.
fn is_part_name(name: &str) -> bool {
    name.strip_prefix("plan-")
        .and_then(|r| r.strip_suffix(".md"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of a part without its marker, part line and continuation line.
    fn content(part: &str) -> String {
        let mut lines: Vec<&str> = part.split_inclusive('\n').collect();
        assert!(lines[0].starts_with(MARKER_PREFIX), "no marker: {part}");
        lines.remove(0);
        if lines
            .first()
            .is_some_and(|l| l.starts_with("_intelli plan, part "))
        {
            lines.drain(..2);
        }
        if lines
            .last()
            .is_some_and(|l| l.starts_with("_Continued in part "))
        {
            lines.truncate(lines.len() - 2);
        }
        lines.concat()
    }

    /// Every fence closed and every `<details>` closed within the part.
    fn assert_balanced(part: &str) {
        let mut open = Open::default();
        for line in part.lines() {
            open.track(line);
        }
        assert!(open.fence.is_none(), "a fence left open:\n{part}");
        assert!(open.details.is_empty(), "a <details> left open:\n{part}");
    }

    fn section(name: &str, lines: usize) -> String {
        let mut s = format!(
            "<details><summary><code>{name}</code> — {lines} changes</summary>\n\n```diff\n"
        );
        for i in 0..lines {
            let _ = writeln!(s, "+ apply migration 2026010100{i:04} for {name}");
        }
        s.push_str("```\n\n</details>\n\n");
        s
    }

    #[test]
    fn a_small_plan_is_one_part_with_its_marker() {
        let blocks = vec!["### intelli plan\n\n".to_string(), section("acme", 3)];
        let parts = split(&blocks, DEFAULT_MAX_COMMENT_BYTES, None).expect("split");
        assert_eq!(parts.len(), 1);
        assert!(parts[0].starts_with("<!-- intelli-plan part 1/1 -->\n"));
        assert!(!parts[0].contains("part 1 of 1"));
        assert_eq!(content(&parts[0]), blocks.concat());
    }

    #[test]
    fn parts_hold_whole_sections_in_order_under_the_limit() {
        let mut blocks = vec!["### intelli plan\n\n".to_string()];
        for i in 0..40 {
            blocks.push(section(&format!("client-{i:02}"), 5 + i % 7));
        }
        let max = 2_000;
        let parts = split(&blocks, max, None).expect("split");
        assert!(parts.len() > 3, "{} parts", parts.len());
        let n = parts.len();
        let mut joined = String::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= max, "part {} is {} bytes", i + 1, p.len());
            assert!(p.starts_with(&format!("<!-- intelli-plan part {}/{n} -->\n", i + 1)));
            assert!(p.contains(&format!("_intelli plan, part {} of {n}._", i + 1)));
            assert_eq!(
                i + 1 < n,
                p.contains("_Continued in part "),
                "part {}",
                i + 1
            );
            assert_balanced(p);
            let c = content(p);
            // Whole sections only: the part is a run of consecutive blocks.
            let first = blocks
                .iter()
                .position(|b| c.starts_with(b.as_str()))
                .expect("starts at a block");
            let mut rest = c.as_str();
            for b in &blocks[first..] {
                match rest.strip_prefix(b.as_str()) {
                    Some(r) => rest = r,
                    None => break,
                }
            }
            assert!(rest.is_empty(), "part {} cuts a section: {rest:?}", i + 1);
            joined.push_str(&c);
        }
        assert_eq!(joined, blocks.concat());
    }

    #[test]
    fn an_oversized_section_is_cut_at_lines_and_reopened() {
        let big = section("huge", 400);
        let blocks = vec![
            "### intelli plan\n\n".to_string(),
            big.clone(),
            section("small", 2),
        ];
        let max = 4_000;
        let parts = split(&blocks, max, None).expect("split");
        assert!(parts.len() >= 5, "{} parts", parts.len());
        let mut migration_lines = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= max, "part {} is {} bytes", i + 1, p.len());
            assert_balanced(p);
            if i > 0 && i + 1 < parts.len() {
                assert!(
                    p.contains("<details><summary><code>huge</code> — 400 changes (continued)</summary>\n\n```diff\n"),
                    "part {} does not reopen the section:\n{p}",
                    i + 1
                );
            }
            migration_lines.extend(
                p.lines()
                    .filter(|l| l.starts_with("+ apply migration"))
                    .map(String::from),
            );
        }
        // Every line of the section once, in order (plus the small one's two).
        let expected: Vec<String> = big
            .lines()
            .chain(section("small", 2).lines().collect::<Vec<_>>())
            .filter(|l| l.starts_with("+ apply migration"))
            .map(String::from)
            .collect();
        assert_eq!(migration_lines, expected);
    }

    #[test]
    fn a_line_longer_than_a_part_is_cut_at_characters() {
        let slugs: Vec<String> = (0..400).map(|i| format!("`clïent-{i:03}`")).collect();
        let block = format!(
            "<details><summary>the 400 clients</summary>\n\n{}\n\n</details>\n\n",
            slugs.join(", ")
        );
        let parts = split(std::slice::from_ref(&block), 1_000, None).expect("split");
        assert!(parts.len() > 4);
        let mut text = String::new();
        for p in &parts {
            assert!(p.len() <= 1_000, "{} bytes", p.len());
            assert_balanced(p);
            text.push_str(&content(p));
        }
        // Cut lines may split a slug over two parts, never lose a character of it.
        let squeezed: String = text
            .replace(
                "</details>\n<details><summary>the 400 clients (continued)</summary>",
                "",
            )
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let original: String = block.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(squeezed, original);
    }

    #[test]
    fn a_shard_plan_says_its_shard_in_the_marker() {
        let parts =
            split(&["x\n".to_string()], DEFAULT_MAX_COMMENT_BYTES, Some("2/4")).expect("split");
        assert!(parts[0].starts_with("<!-- intelli-plan shard 2/4 part 1/1 -->\n"));
    }

    #[test]
    fn a_limit_too_small_is_refused() {
        assert!(matches!(
            split(&["x".into()], 100, None),
            Err(CommentError::TooSmall(100))
        ));
        assert!(split(&["x".into()], MIN_MAX_COMMENT_BYTES, Some("10/16")).is_ok());
    }

    #[test]
    fn writing_parts_replaces_an_earlier_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("plan-3.md"), "old").expect("old part");
        std::fs::write(dir.path().join("plan-notes.md"), "keep").expect("other file");
        let written = write_parts(dir.path(), &["a".into(), "b".into()]).expect("write");
        assert_eq!(written.len(), 2);
        assert!(!dir.path().join("plan-3.md").exists());
        assert!(dir.path().join("plan-notes.md").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("plan-2.md")).expect("part"),
            "b"
        );
    }
}

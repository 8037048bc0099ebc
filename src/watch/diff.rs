//! What changed between two renderings of the plan, for people: only the changed lines, each
//! run of them under the client section it belongs to (the nearest unindented line above it in
//! the new plan), made with `similar`'s line diff.

use similar::{ChangeTag, TextDiff};

/// The changed lines of `old` → `new` (`-` removed, `+` added), each hunk headed by `@@` and
/// the section it is in when its first line is not that section's own header. Empty when the
/// texts are the same.
pub fn changes(old: &str, new: &str, color: bool) -> String {
    let diff = TextDiff::from_lines(old, new);
    let new_lines: Vec<&str> = new.lines().collect();
    let mut out = String::new();
    for group in diff.grouped_ops(0) {
        let Some(first) = group.first() else { continue };
        // The section the change is in: the nearest header above where it lands in the new
        // text (for lines only removed, where they were).
        let at = first.new_range().start;
        let header = new_lines[..at.min(new_lines.len())]
            .iter()
            .rev()
            .find(|l| is_header(l));
        let first_changed_is_header = group
            .iter()
            .flat_map(|op| diff.iter_changes(op))
            .find(|c| c.tag() != ChangeTag::Equal)
            .is_some_and(|c| is_header(c.value().trim_end_matches('\n')));
        if let Some(h) = header
            && !first_changed_is_header
        {
            out.push_str(&paint(&format!("@@ {h}"), "36", color));
            out.push('\n');
        }
        for op in &group {
            for change in diff.iter_changes(op) {
                let (sign, code) = match change.tag() {
                    ChangeTag::Delete => ('-', "31"),
                    ChangeTag::Insert => ('+', "32"),
                    ChangeTag::Equal => continue,
                };
                let line = format!("{sign}{}", change.value().trim_end_matches('\n'));
                out.push_str(&paint(&line, code, color));
                out.push('\n');
            }
        }
    }
    out
}

/// A client section's first line (`~ acme: …`, `= initech: no changes`) or the totals line:
/// the plan's text puts everything else under them, indented.
fn is_header(line: &str) -> bool {
    !line.is_empty() && !line.starts_with(' ')
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::changes;

    const BEFORE: &str = "= acme: no changes\n= globex: no changes\n\nPlan: 0 actions for 0 of 2 clients; 0 clients with errors.\n";
    const AFTER: &str = "= acme: no changes\n~ globex: intelli-globex (r)\n    > apply 1 migration\n        20990101000000\n\nPlan: 1 action for 1 of 2 clients; 0 clients with errors.\n";

    #[test]
    fn only_changed_lines_under_their_section() {
        let d = changes(BEFORE, AFTER, false);
        assert_eq!(
            d,
            "-= globex: no changes\n+~ globex: intelli-globex (r)\n+    > apply 1 migration\n+        20990101000000\n\
             -Plan: 0 actions for 0 of 2 clients; 0 clients with errors.\n+Plan: 1 action for 1 of 2 clients; 0 clients with errors.\n"
        );
        assert_eq!(changes(AFTER, AFTER, false), "");
    }

    #[test]
    fn a_change_inside_a_section_names_it() {
        let old = "~ acme: intelli-acme (r)\n    > apply 1 migration\n        1\n";
        let new = "~ acme: intelli-acme (r)\n    > apply 2 migrations\n        1\n        2\n";
        let d = changes(old, new, false);
        assert!(d.starts_with("@@ ~ acme: intelli-acme (r)\n"), "{d}");
        assert!(
            d.contains("-    > apply 1 migration\n+    > apply 2 migrations\n"),
            "{d}"
        );
        assert!(d.contains("+        2\n"), "{d}");
        assert!(
            !d.contains("        1\n        2"),
            "unchanged lines are left out: {d}"
        );
        assert!(changes(old, new, true).contains("\x1b[32m+"));
    }
}

//! Splitting a migration file into statements the way the Supabase CLI does, and a canonical
//! form for comparing SQL regardless of layout.
//!
//! The CLI stores each file's statements in `schema_migrations.statements`; writing the same
//! array is what makes `supabase migration list` and intelli agree. Its tokenizer
//! (`pkg/parser/token.go`) splits on `;` outside of comments (`--`, nested `/* */`), quoted
//! strings (`'…'` with `''`, `"…"`), dollar quotes (`$tag$…$tag$`) and `BEGIN ATOMIC … END`
//! bodies; each statement is trimmed and loses its trailing `;`.

/// What the lexer is inside of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    LineComment,
    BlockComment(u32),
    Single,
    Double,
    Dollar,
}

/// One lexical piece of SQL text, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    /// Code outside quotes and comments (may contain `;`).
    Code(&'a str),
    /// A comment, including its delimiters.
    Comment(&'a str),
    /// A quoted string or identifier or dollar-quoted body, including its delimiters.
    Quoted(&'a str),
}

fn lex(sql: &str) -> Vec<Piece<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut state = State::Code;
    let mut start = 0;
    let mut dollar_tag: &str = "";
    let mut i = 0;
    while i < b.len() {
        match state {
            State::Code => match b[i] {
                b'-' if b.get(i + 1) == Some(&b'-') => {
                    push(&mut out, Piece::Code(&sql[start..i]));
                    start = i;
                    state = State::LineComment;
                    i += 2;
                }
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    push(&mut out, Piece::Code(&sql[start..i]));
                    start = i;
                    state = State::BlockComment(1);
                    i += 2;
                }
                b'\'' => {
                    push(&mut out, Piece::Code(&sql[start..i]));
                    start = i;
                    state = State::Single;
                    i += 1;
                }
                b'"' => {
                    push(&mut out, Piece::Code(&sql[start..i]));
                    start = i;
                    state = State::Double;
                    i += 1;
                }
                b'$' => {
                    // `$tag$` where tag is empty or an identifier not starting with a digit;
                    // `$1` is a parameter, not a quote.
                    let rest = &sql[i + 1..];
                    let tag_len = rest
                        .bytes()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                        .count();
                    let starts_digit = rest.as_bytes().first().is_some_and(u8::is_ascii_digit);
                    if !starts_digit && rest.as_bytes().get(tag_len) == Some(&b'$') {
                        push(&mut out, Piece::Code(&sql[start..i]));
                        start = i;
                        dollar_tag = &sql[i..i + tag_len + 2];
                        state = State::Dollar;
                        i += tag_len + 2;
                    } else {
                        i += 1;
                    }
                }
                _ => i += 1,
            },
            State::LineComment => {
                if b[i] == b'\n' {
                    push(&mut out, Piece::Comment(&sql[start..i]));
                    start = i;
                    state = State::Code;
                }
                i += 1;
            }
            State::BlockComment(depth) => {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    state = State::BlockComment(depth + 1);
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    i += 2;
                    if depth == 1 {
                        push(&mut out, Piece::Comment(&sql[start..i]));
                        start = i;
                        state = State::Code;
                    } else {
                        state = State::BlockComment(depth - 1);
                    }
                } else {
                    i += 1;
                }
            }
            State::Single | State::Double => {
                let quote = if state == State::Single { b'\'' } else { b'"' };
                if b[i] == b'\\' && state == State::Single {
                    // Backslash escapes (E'' strings): never let `\'` close the quote.
                    i += 2;
                } else if b[i] == quote {
                    if b.get(i + 1) == Some(&quote) {
                        i += 2;
                    } else {
                        i += 1;
                        push(&mut out, Piece::Quoted(&sql[start..i]));
                        start = i;
                        state = State::Code;
                    }
                } else {
                    i += 1;
                }
            }
            State::Dollar => {
                if sql[i..].starts_with(dollar_tag) {
                    i += dollar_tag.len();
                    push(&mut out, Piece::Quoted(&sql[start..i]));
                    start = i;
                    state = State::Code;
                } else {
                    i += 1;
                }
            }
        }
    }
    let i = i.min(b.len());
    let tail = &sql[start..i];
    match state {
        State::Code => push(&mut out, Piece::Code(tail)),
        State::LineComment | State::BlockComment(_) => push(&mut out, Piece::Comment(tail)),
        _ => push(&mut out, Piece::Quoted(tail)),
    }
    out
}

fn push<'a>(out: &mut Vec<Piece<'a>>, piece: Piece<'a>) {
    let empty = match piece {
        Piece::Code(s) | Piece::Comment(s) | Piece::Quoted(s) => s.is_empty(),
    };
    if !empty {
        out.push(piece);
    }
}

/// Split `sql` into trimmed statements without their trailing `;`, like the Supabase CLI.
/// Segments that are empty after trimming are dropped.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    // Inside `BEGIN ATOMIC … END` a `;` does not end the statement.
    for piece in lex(sql) {
        match piece {
            Piece::Code(code) => {
                let mut rest = code;
                while let Some(pos) = rest.find(';') {
                    let before = &rest[..pos];
                    current.push_str(before);
                    if open_atomic_bodies(&current) > 0 {
                        current.push(';');
                    } else {
                        finish(&mut statements, &mut current);
                    }
                    rest = &rest[pos + 1..];
                }
                current.push_str(rest);
            }
            Piece::Comment(s) | Piece::Quoted(s) => current.push_str(s),
        }
    }
    finish(&mut statements, &mut current);
    statements
}

fn finish(statements: &mut Vec<String>, current: &mut String) {
    let s = current.trim();
    if !s.is_empty() {
        statements.push(s.to_string());
    }
    current.clear();
}

/// Whether the statement so far has an open `BEGIN ATOMIC` (SQL-standard function body):
/// counts `BEGIN ATOMIC` openings against `END` keywords in code (not in quotes or comments).
fn open_atomic_bodies(statement: &str) -> usize {
    let code: String = lex(statement)
        .into_iter()
        .map(|p| match p {
            Piece::Code(c) => c.to_ascii_lowercase(),
            _ => " ".to_string(),
        })
        .collect();
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut depth = 0usize;
    let mut i = 0;
    while i < words.len() {
        if words[i] == "begin" && words.get(i + 1) == Some(&"atomic") {
            depth += 1;
            i += 2;
            continue;
        }
        if depth > 0 && words[i] == "case" {
            // CASE … END inside an atomic body must not close it.
            depth += 1;
        } else if depth > 0 && words[i] == "end" {
            depth -= 1;
        }
        i += 1;
    }
    depth
}

/// `sql` without comments, whitespace and statement separators outside quotes: two texts
/// with the same canonical form run the same statements. Used to detect an applied migration
/// whose file changed, independently of how the statements were split when it was recorded.
pub fn canonical(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for piece in lex(sql) {
        match piece {
            Piece::Code(c) => out.extend(c.chars().filter(|ch| !ch.is_whitespace() && *ch != ';')),
            Piece::Comment(_) => {}
            Piece::Quoted(q) => out.push_str(q),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_cli() {
        let sql = "create table a (x int); -- one; two\n\
                   insert into a values (1);\n\
                   /* c; /* nested; */ still; */ select ';' as \"x;y\";\n\
                   create function f() returns text language plpgsql as $fn$ begin return 'a;b'; end $fn$;\n\
                   select $1::int;\n\
                   select E'it\\'s; fine';";
        let st = split_statements(sql);
        assert_eq!(st.len(), 6, "{st:#?}");
        assert_eq!(st[0], "create table a (x int)");
        assert_eq!(st[1], "-- one; two\ninsert into a values (1)");
        assert!(st[2].ends_with("select ';' as \"x;y\""));
        assert!(st[3].contains("return 'a;b'; end $fn$"));
        assert_eq!(st[4], "select $1::int");
        assert_eq!(st[5], "select E'it\\'s; fine'");
    }

    #[test]
    fn begin_atomic_bodies_stay_whole() {
        let sql = "create function g(x int) returns int language sql begin atomic select case when x > 0 then 1 else 0 end; select 2; end; select 3;";
        let st = split_statements(sql);
        assert_eq!(st.len(), 2, "{st:#?}");
        assert!(st[0].ends_with("select 2; end"));
        assert_eq!(st[1], "select 3");
    }

    #[test]
    fn canonical_ignores_layout_but_not_content() {
        let a = "create table t (\n  x int -- the x\n);\n";
        let b = "CREATE table t (x int);";
        assert_ne!(canonical(a), canonical(b), "case of code is content");
        assert_eq!(canonical(a), canonical("create table t(x int)"));
        assert_ne!(
            canonical("select 'a  b'"),
            canonical("select 'a b'"),
            "quoted text is content"
        );
        let joined = split_statements(a).join("\n");
        assert_eq!(canonical(&joined), canonical(a));
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in [
            "select 'abc",
            "select $x$ abc",
            "/* abc",
            "-- x",
            "$",
            "select $1",
            "'",
        ] {
            let _ = split_statements(s);
            let _ = canonical(s);
        }
    }
}

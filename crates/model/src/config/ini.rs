//! The gcfg dialect of INI that OCCM, the in-tree provider and Magnum write cloud.conf in:
//! `[Section]` and `[Section "subsection"]` headers, `key = value` lines, `key` alone (a bare
//! boolean), `#`/`;` comments, double-quoted values with `\\ \" \n \t` escapes and
//! backslash-newline continuations. Hand-written because no INI crate implements gcfg's
//! quoting and subsection rules. It only produces raw items; it must not know which sections
//! or keys exist or what their values mean.

use super::ConfigError;

/// One syntactic item, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Section {
        name: String,
        subsection: Option<String>,
        line: usize,
    },
    Entry(RawEntry),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub key: String,
    /// None: the key had no `=` at all (gcfg's shorthand for `true` on booleans).
    pub value: Option<String>,
    pub line: usize,
    /// The unquoted value contained `#` or `;` glued to other text. gcfg starts a comment
    /// there (so OCCM would have read a shorter value); we keep it and warn.
    pub glued_comment_char: bool,
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }
    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.next();
        }
    }
    fn skip_to_eol(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.next();
        }
    }
    /// After a complete item only blanks and a comment may follow on the line.
    fn expect_eol(&mut self) -> Result<(), ConfigError> {
        self.skip_blanks();
        match self.peek() {
            None | Some('\n') => Ok(()),
            Some('#' | ';') => {
                self.skip_to_eol();
                Ok(())
            }
            Some(c) => Err(syntax(
                self.line,
                format!("unexpected {c:?} after the end of the item"),
            )),
        }
    }
}

fn syntax(line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError::Syntax {
        line,
        message: message.into(),
    }
}

fn is_ident_char(c: char) -> bool {
    // gcfg allows letters, digits and '-'; '_' and '.' are accepted here too so that a
    // misspelt key (`auth_url`) yields an "unknown key" warning rather than a syntax error.
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn read_ident(cur: &mut Cursor<'_>) -> String {
    let mut s = String::new();
    while let Some(c) = cur.peek() {
        if !is_ident_char(c) {
            break;
        }
        s.push(c);
        cur.next();
    }
    s
}

/// Splits cloud.conf text into sections and entries.
pub(crate) fn parse(text: &str) -> Result<Vec<Item>, ConfigError> {
    let cleaned: String = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let mut cur = Cursor {
        chars: cleaned.chars().peekable(),
        line: 1,
    };
    let mut items = Vec::new();
    let mut in_section = false;
    loop {
        cur.skip_blanks();
        let Some(c) = cur.peek() else { break };
        match c {
            '\n' => {
                cur.next();
            }
            '#' | ';' => cur.skip_to_eol(),
            '[' => {
                let line = cur.line;
                cur.next();
                cur.skip_blanks();
                let name = read_ident(&mut cur);
                if name.is_empty() {
                    return Err(syntax(line, "expected a section name after '['"));
                }
                cur.skip_blanks();
                let subsection = if cur.peek() == Some('"') {
                    cur.next();
                    let sub = read_subsection(&mut cur, line)?;
                    if sub.is_empty() {
                        return Err(syntax(
                            line,
                            format!("empty subsection name in [{name} \"\"]"),
                        ));
                    }
                    cur.skip_blanks();
                    Some(sub)
                } else {
                    None
                };
                if cur.next() != Some(']') {
                    return Err(syntax(
                        line,
                        format!("section header [{name} is missing its ']'"),
                    ));
                }
                cur.expect_eol()?;
                in_section = true;
                items.push(Item::Section {
                    name,
                    subsection,
                    line,
                });
            }
            c if is_ident_char(c) => {
                let line = cur.line;
                let key = read_ident(&mut cur);
                if !in_section {
                    return Err(syntax(
                        line,
                        format!("key {key:?} appears before any [Section] header"),
                    ));
                }
                cur.skip_blanks();
                match cur.peek() {
                    None | Some('\n' | '#' | ';') => {
                        cur.expect_eol()?;
                        items.push(Item::Entry(RawEntry {
                            key,
                            value: None,
                            line,
                            glued_comment_char: false,
                        }));
                    }
                    Some('=') => {
                        cur.next();
                        cur.skip_blanks();
                        let (value, glued) = read_value(&mut cur, line, &key)?;
                        items.push(Item::Entry(RawEntry {
                            key,
                            value: Some(value),
                            line,
                            glued_comment_char: glued,
                        }));
                    }
                    Some(other) => {
                        return Err(syntax(
                            line,
                            format!("expected '=' after key {key:?}, found {other:?}"),
                        ))
                    }
                }
            }
            other => return Err(syntax(cur.line, format!("unexpected character {other:?}"))),
        }
    }
    Ok(items)
}

fn read_subsection(cur: &mut Cursor<'_>, line: usize) -> Result<String, ConfigError> {
    let mut s = String::new();
    loop {
        match cur.next() {
            None | Some('\n') => {
                return Err(syntax(line, "subsection name is missing its closing '\"'"))
            }
            Some('"') => return Ok(s),
            Some('\\') => match cur.next() {
                Some(c @ ('\\' | '"')) => s.push(c),
                _ => {
                    return Err(syntax(
                        line,
                        "only \\\\ and \\\" escapes are allowed in a subsection name",
                    ))
                }
            },
            Some(c) => s.push(c),
        }
    }
}

/// Reads a value up to the end of the line (or a comment), honouring quotes, escapes and
/// continuation lines. Quotes may cover only part of the value, as in gcfg.
fn read_value(cur: &mut Cursor<'_>, line: usize, key: &str) -> Result<(String, bool), ConfigError> {
    let mut out = String::new();
    // Length of `out` up to its last character that must be kept: trailing blanks outside
    // quotes are not part of the value.
    let mut keep = 0;
    let mut in_quote = false;
    let mut glued = false;
    let mut prev_blank = true;
    loop {
        let Some(c) = cur.peek() else {
            if in_quote {
                return Err(syntax(
                    line,
                    format!("value of {key:?} is missing its closing '\"'"),
                ));
            }
            break;
        };
        if in_quote {
            cur.next();
            match c {
                '"' => in_quote = false,
                '\n' => return Err(syntax(line, format!("value of {key:?} is missing its closing '\"'"))),
                '\\' => match cur.next() {
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    other => {
                        return Err(syntax(
                            line,
                            format!(
                                "unknown escape \\{} in the value of {key:?}; accepted: \\\\ \\\" \\n \\t",
                                other.map(String::from).unwrap_or_default()
                            ),
                        ))
                    }
                },
                c => out.push(c),
            }
            keep = out.len();
            prev_blank = false;
            continue;
        }
        match c {
            '\n' => break,
            '#' | ';' if prev_blank => {
                cur.skip_to_eol();
                break;
            }
            '"' => {
                cur.next();
                in_quote = true;
                prev_blank = false;
            }
            '\\' => {
                cur.next();
                if cur.peek() == Some('\n') {
                    cur.next();
                    prev_blank = true;
                } else {
                    return Err(syntax(
                        line,
                        format!(
                            "unquoted '\\' in the value of {key:?} must end the line (continuation); \
                             quote the value and write \\\\ for a backslash"
                        ),
                    ));
                }
            }
            c => {
                cur.next();
                if c == '#' || c == ';' {
                    glued = true;
                }
                out.push(c);
                if c == ' ' || c == '\t' {
                    prev_blank = true;
                } else {
                    prev_blank = false;
                    keep = out.len();
                }
            }
        }
    }
    out.truncate(keep);
    Ok((out, glued))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, Option<String>)> {
        parse(text)
            .unwrap()
            .into_iter()
            .filter_map(|i| match i {
                Item::Entry(e) => Some((e.key, e.value)),
                Item::Section { .. } => None,
            })
            .collect()
    }

    #[test]
    fn plain_quoted_and_commented_values() {
        let got = entries(
            "[Global]\n a = b c  \n q = \"x # y\" ; note\n e = \"t\\\"\\\\\\n\"\n h = v # c\n s = v;c\n",
        );
        assert_eq!(got[0], ("a".into(), Some("b c".into())));
        assert_eq!(got[1], ("q".into(), Some("x # y".into())));
        assert_eq!(got[2], ("e".into(), Some("t\"\\\n".into())));
        assert_eq!(got[3], ("h".into(), Some("v".into())));
        assert_eq!(got[4], ("s".into(), Some("v;c".into())));
    }

    #[test]
    fn glued_comment_characters_are_flagged() {
        let items = parse("[Global]\npassword = ab#cd\n").unwrap();
        match &items[1] {
            Item::Entry(e) => assert!(e.glued_comment_char),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_quotes_and_continuations() {
        let got = entries("[G]\nk = ab\"c d\"e\nm = one \\\n two\nbare\nempty =\n");
        assert_eq!(got[0].1.as_deref(), Some("abc de"));
        assert_eq!(got[1].1.as_deref(), Some("one  two"));
        assert_eq!(got[2], ("bare".into(), None));
        assert_eq!(got[3], ("empty".into(), Some(String::new())));
    }

    #[test]
    fn subsections_and_crlf() {
        let items =
            parse("\u{feff}[LoadBalancerClass \"a \\\"b\\\"\"]\r\nsubnet-id=x\r\n").unwrap();
        assert_eq!(
            items[0],
            Item::Section {
                name: "LoadBalancerClass".into(),
                subsection: Some("a \"b\"".into()),
                line: 1
            }
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line) in [
            ("k = v\n", 1),
            ("[G]\n\nk = \"open\n", 3),
            ("[G\n", 1),
            ("[G]\nk = a\\b\n", 2),
            ("[G]\nk = \"\\q\"\n", 2),
            ("[G \"\"]\n", 1),
            ("[G] x\n", 1),
            ("[G]\nk : v\n", 2),
        ] {
            match parse(text) {
                Err(ConfigError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}

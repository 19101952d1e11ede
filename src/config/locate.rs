//! Turning byte offsets and key paths back into "which key, which line".
//!
//! serde reports a wrong type with the span of the offending value but without the key's name,
//! and semantic validation knows the key but not where it was written. A span-preserving parse of
//! the same text answers both questions.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::{ConfigError, EnvOverride};

/// A problem found by validation: the dotted key path and what is wrong with its value.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueError {
    pub key: Vec<String>,
    pub message: String,
}

pub(crate) struct Document<'a> {
    text: &'a str,
    origin: Option<PathBuf>,
}

/// One key of the document with where its name and its value were written.
struct Located {
    path: Vec<String>,
    key_span: Range<usize>,
    value_span: Range<usize>,
}

impl<'a> Document<'a> {
    pub fn new(text: &'a str, origin: Option<&Path>) -> Self {
        Document {
            text,
            origin: origin.map(Path::to_path_buf),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn keys(&self) -> Vec<Located> {
        let mut out = Vec::new();
        if let Ok(table) = DeTable::parse(self.text) {
            walk(table.get_ref(), &mut Vec::new(), &mut out);
        }
        out
    }

    /// TOML allows no control character but tab outside `\u` escapes. The parser reports one
    /// as whatever token it happens to break ("string values must be quoted" for a NUL byte);
    /// this names it, with its line and column.
    pub fn control_character(&self) -> Option<ConfigError> {
        let (offset, c) = self
            .text
            .char_indices()
            .find(|&(_, c)| (c <= '\u{1f}' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}')?;
        let what = if c == '\0' {
            "a NUL byte".to_string()
        } else {
            format!("the control character U+{:04X}", u32::from(c))
        };
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        Some(ConfigError {
            file: self.origin.clone(),
            line: Some(self.line_of(offset)),
            key: None,
            env_var: None,
            message: format!(
                "{what} at column {column}: TOML allows no control characters (write them as \\u \
                 escapes inside a quoted string); is this a text file?"
            ),
        })
    }

    pub fn parse_error(&self, e: &toml::de::Error) -> ConfigError {
        let mut message = first_line(e.message());
        let Some(span) = e.span() else {
            return ConfigError {
                file: self.origin.clone(),
                line: None,
                key: None,
                env_var: None,
                message,
            };
        };
        // The innermost key whose name or value covers the error is the one to blame. An unknown
        // key's span is the key itself; a wrong type's span is the value.
        let keys = self.keys();
        let hit = keys
            .iter()
            .filter(|k| covers(&k.key_span, &span) || covers(&k.value_span, &span))
            .max_by_key(|k| k.path.len());
        let mut key = hit.map(|k| k.path.join("."));
        // A document with a duplicate does not parse at all, so no key is located above: the
        // span is the second occurrence's name.
        if key.is_none()
            && message.starts_with("duplicate key")
            && let Some((dotted, first)) = self.duplicate(&span)
        {
            key = Some(dotted);
            if let Some(first) = first {
                message = format!("{message}: already set on line {first}");
            }
        }
        ConfigError {
            file: self.origin.clone(),
            line: Some(self.line_of(span.start)),
            key,
            env_var: None,
            message,
        }
    }

    /// The dotted name of the duplicate key (or table) at `span`, and the line where it was
    /// first written when that can be found.
    fn duplicate(&self, span: &Range<usize>) -> Option<(String, Option<usize>)> {
        let name = unquote(self.text.get(span.clone())?.trim());
        if name.is_empty() {
            return None;
        }
        let line_no = self.line_of(span.start);
        let lines: Vec<&str> = self.text.lines().collect();
        let header = |l: &str| {
            let t = l.trim();
            t.starts_with('[').then(|| {
                unquote(
                    t.trim_start_matches('[')
                        .split(']')
                        .next()
                        .unwrap_or("")
                        .trim(),
                )
            })
        };
        if lines
            .get(line_no - 1)
            .is_some_and(|l| l.trim_start().starts_with('['))
        {
            // A table header written twice.
            let first = lines[..line_no - 1]
                .iter()
                .position(|l| header(l).as_deref() == Some(name.as_str()))
                .map(|i| i + 1);
            return Some((name, first));
        }
        // A key: its table is the last header above it, and the first occurrence lies between
        // that header and here.
        let (table, from) = lines[..line_no - 1]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, l)| header(l).map(|h| (h, i + 1)))
            .unwrap_or_default();
        let first = lines[from..line_no - 1]
            .iter()
            .position(|l| {
                l.split_once('=')
                    .is_some_and(|(k, _)| unquote(k.trim()) == name)
            })
            .map(|i| from + i + 1);
        let dotted = if table.is_empty() {
            name
        } else {
            format!("{table}.{name}")
        };
        Some((dotted, first))
    }

    pub fn value_error(&self, v: ValueError, overrides: &[EnvOverride]) -> ConfigError {
        let dotted = v.key.join(".");
        if let Some(o) = overrides.iter().rev().find(|o| o.key == v.key) {
            return ConfigError::env(o, &v.message);
        }
        let line = self
            .keys()
            .into_iter()
            .find(|k| k.path == v.key)
            .map(|k| self.line_of(k.key_span.start));
        ConfigError {
            file: self.origin.clone(),
            line,
            key: Some(dotted),
            env_var: None,
            message: v.message,
        }
    }
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.start < outer.end.max(outer.start + 1)
}

fn walk(table: &DeTable<'_>, prefix: &mut Vec<String>, out: &mut Vec<Located>) {
    for (k, v) in table.iter() {
        prefix.push(k.get_ref().to_string());
        out.push(Located {
            path: prefix.clone(),
            key_span: k.span(),
            value_span: v.span(),
        });
        if let DeValue::Table(inner) = v.get_ref() {
            walk(inner, prefix, out);
        }
        prefix.pop();
    }
}

/// A key as written, without the quotes of a quoted key.
fn unquote(key: &str) -> String {
    key.trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// toml's messages can carry a multi-line excerpt; the first line is the statement itself.
fn first_line(msg: &str) -> String {
    msg.lines().next().unwrap_or(msg).trim().to_string()
}

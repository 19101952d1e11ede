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

    pub fn parse_error(&self, e: &toml::de::Error) -> ConfigError {
        let message = first_line(e.message());
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
        ConfigError {
            file: self.origin.clone(),
            line: Some(self.line_of(span.start)),
            key: hit.map(|k| k.path.join(".")),
            env_var: None,
            message,
        }
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

/// toml's messages can carry a multi-line excerpt; the first line is the statement itself.
fn first_line(msg: &str) -> String {
    msg.lines().next().unwrap_or(msg).trim().to_string()
}

//! Hostile text made safe to show.
//!
//! On a shared server process names, command lines and even user names are chosen by whoever
//! runs the process: an escape sequence in a `comm` could repaint an admin's terminal, a newline
//! could forge a log line or an email header. Every such string passes through here once, at the
//! collector's boundary, so nothing downstream has to remember to.

/// Replace invalid UTF-8, drop control characters (C0, DEL, C1) and Unicode bidirectional
/// overrides, and turn tabs and newlines into spaces so that words stay apart.
pub fn clean_bytes(raw: &[u8]) -> String {
    clean(&String::from_utf8_lossy(raw))
}

pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Show control characters and bidi controls as `\u{1b}` escapes instead of dropping them:
/// for text that quotes a file an admin must then correct (a config key or value), where a
/// character silently dropped would hide what is wrong and one left in could rewrite the
/// terminal or forge a log line.
pub fn escape(s: &str) -> String {
    if is_clean(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() || is_bidi_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// True when `s` would pass through `clean` unchanged.
pub fn is_clean(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() || is_bidi_control(c))
}

/// Bidi embeddings, overrides and isolates can reorder what follows them on screen.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escape_sequences_and_c1() {
        assert_eq!(clean("a\x1b[31mred\x1b[0m"), "a[31mred[0m");
        assert_eq!(clean("x\u{9b}2Jy"), "x2Jy");
        assert_eq!(clean("del\x7f"), "del");
    }

    #[test]
    fn newlines_become_spaces() {
        assert_eq!(clean("Subject: x\r\nBcc: evil"), "Subject: x  Bcc: evil");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(clean_bytes(b"ab\xffcd"), "ab\u{fffd}cd");
    }

    #[test]
    fn escape_shows_what_clean_would_drop() {
        assert_eq!(escape("ev\x1b]0;x\x07il"), "ev\\u{1b}]0;x\\u{7}il");
        assert_eq!(escape("a\u{202E}b\nc"), "a\\u{202e}b\\u{a}c");
        assert_eq!(escape("plain é"), "plain é");
        assert!(is_clean(&escape("\u{9b}2J\x00")));
    }

    #[test]
    fn bidi_overrides_removed() {
        assert_eq!(clean("evil\u{202E}txt.exe"), "eviltxt.exe");
        assert!(!is_clean("a\u{2066}b"));
        assert!(is_clean("plain name (with) spaces"));
    }
}

//! Writing one setting back into a config file the admin also edits by hand.
//!
//! The TUI's column chooser saves `[ui] columns`. The file is the admin's: comments, order and
//! every other line are kept, only the one key's line is replaced (or added under `[ui]`, or a
//! `[ui]` section appended). The result is parsed and validated before it replaces the file,
//! through a temporary file and a rename, so a failed save leaves the old file whole.

use std::io;
use std::path::Path;

use super::Config;

/// `text` with `[ui] columns` set to `columns`.
pub fn with_ui_columns(text: &str, columns: &[String]) -> String {
    let list = columns
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let line = format!("columns = [{list}]");
    let mut out: Vec<String> = Vec::new();
    let mut in_ui = false;
    let mut done = false;
    let mut skipping_array = false;
    for l in text.lines() {
        let t = l.trim();
        if skipping_array {
            // The rest of a multi-line `columns = [` ... `]` being replaced.
            if t.ends_with(']') {
                skipping_array = false;
            }
            continue;
        }
        if t.starts_with('[') && !t.starts_with("[[") {
            if in_ui && !done {
                // The [ui] section ends without the key: add it at its end.
                while out.last().is_some_and(|p| p.trim().is_empty()) {
                    out.pop();
                }
                out.push(line.clone());
                out.push(String::new());
                done = true;
            }
            in_ui = t == "[ui]";
        }
        if in_ui && !done && t.starts_with("columns") && t[7..].trim_start().starts_with('=') {
            out.push(line.clone());
            done = true;
            skipping_array = t.contains('[') && !t.ends_with(']');
            continue;
        }
        out.push(l.to_string());
    }
    if !done {
        if in_ui {
            out.push(line);
        } else {
            if out.last().is_some_and(|l| !l.trim().is_empty()) {
                out.push(String::new());
            }
            out.push("[ui]".into());
            out.push(line);
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// Save `[ui] columns` into the config file at `path`, keeping everything else in it.
pub fn save_ui_columns(path: &Path, columns: &[String]) -> io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let new = with_ui_columns(&text, columns);
    Config::from_toml(&new, Some(path))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let tmp = path.with_extension("toml.sysmon-tmp");
    let mode = std::fs::metadata(path).map(|m| m.permissions())?;
    std::fs::write(&tmp, new)?;
    std::fs::set_permissions(&tmp, mode)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_key_is_replaced_in_place_and_the_rest_kept() {
        let text = "# mine\n[ui]\n# how often\nrefresh_secs = 1.0\ncolumns = [\"pid\",\n  \"user\"]\n\n[storage]\nretention_days = 3\n";
        let out = with_ui_columns(text, &cols(&["pid", "command"]));
        assert_eq!(
            out,
            "# mine\n[ui]\n# how often\nrefresh_secs = 1.0\ncolumns = [\"pid\", \"command\"]\n\n[storage]\nretention_days = 3\n"
        );
    }

    #[test]
    fn the_key_is_added_to_the_section_or_with_one() {
        let out = with_ui_columns(
            "[ui]\nrefresh_secs = 1.0\n\n[http]\nenabled = false\n",
            &cols(&["pid"]),
        );
        assert_eq!(
            out,
            "[ui]\nrefresh_secs = 1.0\ncolumns = [\"pid\"]\n\n[http]\nenabled = false\n"
        );
        let out = with_ui_columns("[http]\nenabled = false\n", &cols(&["pid"]));
        assert_eq!(
            out,
            "[http]\nenabled = false\n\n[ui]\ncolumns = [\"pid\"]\n"
        );
        let out = with_ui_columns("", &cols(&["pid"]));
        assert_eq!(out, "[ui]\ncolumns = [\"pid\"]\n");
    }

    #[test]
    fn a_save_is_validated_and_leaves_the_file_readable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[ui]\nrefresh_secs = 1.0\n").expect("write");
        save_ui_columns(&path, &cols(&["command", "pid"])).expect("save");
        let c =
            Config::from_toml(&std::fs::read_to_string(&path).expect("read"), None).expect("valid");
        assert_eq!(c.ui.columns, Some(cols(&["command", "pid"])));
        assert_eq!(c.ui.refresh_secs, 1.0);
        let err = save_ui_columns(&path, &cols(&["gpu"])).expect_err("unknown column");
        assert!(err.to_string().contains("gpu"), "{err}");
        let c = Config::from_toml(&std::fs::read_to_string(&path).expect("read"), None)
            .expect("the old file is whole");
        assert_eq!(c.ui.columns, Some(cols(&["command", "pid"])));
    }
}

//! Man pages and shell completions, generated from the clap definitions in [`crate::cli`].
//!
//! They are written at package build time (`cargo run --example package-files -- DIR`, see
//! `packaging/build-deb.sh`) rather than kept as copies in the tree, so a new flag or subcommand
//! reaches `man sysmon` and tab completion with nothing to remember. The pages clap_mangen draws
//! from the help texts get the sections a reader of section 1 expects and clap does not know
//! about: environment, files, exit status and cross references.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use roff::{Roff, bold, italic, roman};

use crate::cli::Cli;

/// The manual's name in each page's header.
const MANUAL: &str = "sysmon manual";

/// Where each shell looks for completions, relative to `/usr/share`, and the file's name there.
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "bash-completion/completions/sysmon"),
    (Shell::Zsh, "zsh/vendor-completions/_sysmon"),
    (Shell::Fish, "fish/vendor_completions.d/sysmon.fish"),
];

/// The command as clap builds it, with the names every page and script uses.
fn command() -> clap::Command {
    let mut cmd = Cli::command()
        .bin_name("sysmon")
        .disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// One page: its file name (`sysmon-alerts-ack.1`) and roff source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub name: String,
    pub source: String,
}

/// `sysmon(1)` and one page for every subcommand at every depth, in a stable order.
pub fn man_pages() -> Vec<Page> {
    let mut all = Vec::new();
    collect(&command(), None, &mut all);
    let names: Vec<String> = all.iter().map(|(c, _)| page_name(c)).collect();
    all.iter()
        .map(|(cmd, parent)| {
            let name = page_name(cmd);
            let related: Vec<String> = if parent.is_none() {
                names.iter().filter(|n| **n != name).cloned().collect()
            } else {
                let mut r = vec!["sysmon".to_string()];
                r.extend(parent.iter().filter(|p| *p != "sysmon").cloned());
                r.extend(visible(cmd).map(page_name));
                r
            };
            Page {
                name: format!("{name}.1"),
                source: render(cmd, &related),
            }
        })
        .collect()
}

fn visible(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

/// Every command with the page name of its parent.
fn collect(
    cmd: &clap::Command,
    parent: Option<String>,
    out: &mut Vec<(clap::Command, Option<String>)>,
) {
    out.push((cmd.clone(), parent));
    for sub in visible(cmd) {
        collect(sub, Some(page_name(cmd)), out);
    }
}

/// `sysmon`, `sysmon-config`, `sysmon-config-check`: the command path joined by dashes.
fn page_name(cmd: &clap::Command) -> String {
    cmd.get_bin_name()
        .unwrap_or_else(|| cmd.get_name())
        .replace(' ', "-")
}

/// clap_mangen's sections, each written with the same string definitions before it; they are
/// kept once.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

fn render(cmd: &clap::Command, related: &[String]) -> String {
    let name = page_name(cmd);
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out: Vec<u8> = Vec::new();
    // Writing to a Vec cannot fail. The header is written here: the roff crate drops the empty
    // date argument, which would shift the others into its place.
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        let _ = man.render_options_section(&mut out);
    }
    if visible(cmd).next().is_some() {
        let _ = man.render_subcommands_section(&mut out);
    }
    let root = name == "sysmon";
    let mut extra = Roff::new();
    if root {
        root_sections(&mut extra);
    }
    exit_status(&mut extra);
    see_also(&mut extra, related, root);
    let _ = extra.to_writer(&mut out);
    let body = String::from_utf8_lossy(&out).replace(PREAMBLE, "");
    format!(
        "{PREAMBLE}.TH {} 1 \"\" \"sysmon {}\" \"{MANUAL}\"\n.nh\n.ad l\n{body}",
        name.to_uppercase(),
        env!("CARGO_PKG_VERSION"),
    )
}

fn tagged(roff: &mut Roff, tag: roff::Inline, text: &str) {
    roff.control("TP", []);
    roff.text([tag]);
    roff.text([roman(text)]);
}

fn root_sections(r: &mut Roff) {
    r.control("SH", ["MODES"]);
    tagged(
        r,
        bold("sysmon"),
        "The full-screen terminal UI: system, per-user and alerts panes, a process drill-down, \
         history charts and time travel. Press ? for every key.",
    );
    tagged(
        r,
        bold("sysmon --once [--json]"),
        "Two samples one second apart, printed as a table or as one JSON document \
         (schema in /usr/share/doc/sysmon/sysmon-status.schema.json).",
    );
    tagged(
        r,
        bold("sysmon --batch [--count N] [--json]"),
        "A report every refresh, like top -b, for logs and pipes.",
    );
    tagged(
        r,
        bold("sysmon --headless"),
        "The daemon run by sysmon.service: history in SQLite, email alerts, an HTTP API with \
         Prometheus metrics. It is not started when the package is installed: edit \
         /etc/sysmon/config.toml, check it with sysmon config check, then run \
         systemctl enable --now sysmon.",
    );

    r.control("SH", ["ENVIRONMENT"]);
    tagged(
        r,
        bold("SYSMON_CONFIG"),
        "The configuration file when --config is not given.",
    );
    tagged(
        r,
        bold("SYSMON_SECTION__KEY"),
        "Sets one configuration key, e.g. SYSMON_MONITORING__CPU_THRESHOLD=90 or \
         SYSMON_EMAIL__PASSWORD; the value is read as TOML, or else as a plain string.",
    );
    tagged(
        r,
        bold("NO_COLOR"),
        "When set and not empty, the terminal UI draws without colors.",
    );
    tagged(
        r,
        bold("XDG_CONFIG_HOME, XDG_STATE_HOME"),
        "Where a user's configuration and, when not root, database are looked for.",
    );

    r.control("SH", ["FILES"]);
    tagged(
        r,
        italic("/etc/sysmon/config.toml"),
        "The system configuration, read by the daemon. It documents every key and holds the \
         defaults. Mode 0600: it may hold the SMTP password and the HTTP token.",
    );
    tagged(
        r,
        italic("~/.config/sysmon/config.toml"),
        "A user's configuration, written by sysmon config init.",
    );
    tagged(
        r,
        italic("/var/lib/sysmon/sysmon.db"),
        "The history database of the daemon and of root (SQLite, with its -wal and -shm \
         files). Other users' default is ~/.local/state/sysmon/sysmon.db.",
    );
    tagged(
        r,
        italic("/usr/lib/systemd/system/sysmon.service"),
        "The systemd unit running sysmon --headless.",
    );
    tagged(
        r,
        italic("/usr/share/doc/sysmon/examples/share-with-group.conf"),
        "A drop-in for the unit that lets the members of the group sysmon use the database \
         without root.",
    );
}

fn exit_status(r: &mut Roff) {
    r.control("SH", ["EXIT STATUS"]);
    tagged(r, bold("0"), "Success.");
    tagged(r, bold("1"), "A failure at run time.");
    tagged(
        r,
        bold("2"),
        "Bad usage or a bad configuration: the message names the key and the line.",
    );
}

fn see_also(r: &mut Roff, related: &[String], root: bool) {
    r.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<&str> = related.iter().map(String::as_str).collect();
    if root {
        refs.extend(["systemctl", "journalctl", "top"]);
    }
    let mut line = Vec::new();
    for (i, page) in refs.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(*page));
        line.push(roman("(1)"));
    }
    r.text(line);
}

/// A shell's completion script.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "sysmon", &mut out);
    out
}

/// Write every man page under `dir/man/man1/` and every completion script under `dir/` at its
/// path below `/usr/share`; returns the files written.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = dir.join("man/man1");
    fs::create_dir_all(&man)?;
    for page in man_pages() {
        let path = man.join(&page.name);
        fs::write(&path, page.source)?;
        written.push(path);
    }
    for (shell, rel) in COMPLETIONS {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, completion(shell))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        man_pages().into_iter().map(|p| p.name).collect()
    }

    #[test]
    fn one_page_for_the_program_and_each_subcommand() {
        let names = names();
        for expected in [
            "sysmon.1",
            "sysmon-config.1",
            "sysmon-config-check.1",
            "sysmon-config-show.1",
            "sysmon-config-init.1",
            "sysmon-status.1",
            "sysmon-alerts.1",
            "sysmon-alerts-ack.1",
            "sysmon-alerts-resolve.1",
            "sysmon-history.1",
            "sysmon-test-email.1",
            "sysmon-http.1",
            "sysmon-http-new-token.1",
            "sysmon-completions.1",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        // Every subcommand clap knows has its page, and no `help` pseudo-command does.
        let mut count = 0;
        fn walk(c: &clap::Command, n: &mut usize) {
            *n += 1;
            c.get_subcommands().for_each(|s| walk(s, n));
        }
        walk(&command(), &mut count);
        assert_eq!(names.len(), count);
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    }

    #[test]
    fn pages_carry_the_help_texts_and_the_sections_clap_does_not_know() {
        let pages = man_pages();
        let page = |n: &str| &pages.iter().find(|p| p.name == n).unwrap().source;
        let root = page("sysmon.1");
        assert!(root.contains("\n.TH SYSMON 1 \"\" \"sysmon "), "{root}");
        for needle in [
            "\\-\\-headless",
            ".SH ENVIRONMENT",
            "SYSMON_CONFIG",
            ".SH FILES",
            "/etc/sysmon/config.toml",
            ".SH \"EXIT STATUS\"",
            "sysmon\\-alerts\\-ack",
        ] {
            assert!(root.contains(needle), "{needle} missing from sysmon.1");
        }
        let history = page("sysmon-history.1");
        assert!(history.contains("Export recorded history"), "{history}");
        assert!(history.contains("\\-\\-since"), "{history}");
        assert!(history.contains("\\fBsysmon\\fR(1)"), "{history}");
    }

    #[test]
    fn pages_and_scripts_are_reproducible() {
        assert_eq!(man_pages(), man_pages());
        for (shell, _) in COMPLETIONS {
            assert_eq!(completion(shell), completion(shell));
        }
    }

    #[test]
    fn completions_offer_the_subcommands() {
        for (shell, _) in COMPLETIONS {
            let script = String::from_utf8(completion(shell)).unwrap();
            for sub in ["config", "alerts", "history", "test-email", "completions"] {
                assert!(script.contains(sub), "{shell}: {sub}");
            }
        }
    }

    #[test]
    fn write_all_lays_out_the_package_tree() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(dir.path()).unwrap();
        assert_eq!(written.len(), man_pages().len() + COMPLETIONS.len());
        assert!(dir.path().join("man/man1/sysmon.1").is_file());
        assert!(
            dir.path()
                .join("bash-completion/completions/sysmon")
                .is_file()
        );
    }
}

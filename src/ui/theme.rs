//! Colors and glyphs, decided once.
//!
//! Only the 8 basic ANSI colors (and their bold forms) are used, so the screen reads the same in
//! a 16-color terminal, under tmux, and over any SSH client. With NO_COLOR every style falls back
//! to bold / reverse, which still marks the focus, the selection and the alarming figures. ASCII
//! mode (`--ascii`, or a locale that is not UTF-8) swaps every box, bar and sparkline glyph for
//! plain characters so nothing turns into mojibake on a legacy terminal.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;

use crate::model::{Severity, Status};

/// How alarming a figure is compared with its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Crit,
}

impl Level {
    /// Over the limit is critical; within a quarter of it, a warning.
    pub fn of(value: f64, limit: f64) -> Level {
        if value >= limit {
            Level::Crit
        } else if value >= limit * 0.75 {
            Level::Warn
        } else {
            Level::Ok
        }
    }
}

const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
    pub ascii: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn level(&self, l: Level) -> Style {
        match l {
            Level::Ok => self.fg(Color::Green),
            Level::Warn => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Level::Crit => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }

    pub fn status(&self, s: Status) -> Style {
        let base = Style::default().add_modifier(Modifier::BOLD);
        if !self.color {
            return base;
        }
        match s {
            Status::Light => base.fg(Color::Black).bg(Color::Green),
            Status::Medium => base.fg(Color::Black).bg(Color::Yellow),
            Status::Heavy => base.fg(Color::White).bg(Color::Red),
        }
    }

    pub fn severity(&self, s: Severity) -> Style {
        match s {
            Severity::Low => self.fg(Color::Cyan),
            Severity::Medium => self.fg(Color::Yellow),
            Severity::High => self.fg(Color::Red),
            Severity::Critical => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            self.fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub fn heading(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            self.dim()
        }
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn banner(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Yellow)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn border_set(&self) -> border::Set<'static> {
        if self.ascii {
            ASCII_BORDER
        } else {
            border::PLAIN
        }
    }

    /// A horizontal bar of `width` cells filled to `percent`.
    pub fn bar(&self, percent: f64, width: usize) -> String {
        let (full, empty) = if self.ascii {
            ('|', '.')
        } else {
            ('█', '░')
        };
        let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
        let filled = filled.min(width);
        let mut s = String::with_capacity(width * 3);
        s.extend(std::iter::repeat_n(full, filled));
        s.extend(std::iter::repeat_n(empty, width - filled));
        s
    }

    /// One character per value (0–100), the last `width` values.
    pub fn sparkline<'a>(
        &self,
        values: impl DoubleEndedIterator<Item = &'a f64>,
        width: usize,
    ) -> String {
        const UNICODE: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        const ASCII: [char; 8] = ['_', '.', '-', ':', '=', '+', '*', '#'];
        let glyphs = if self.ascii { &ASCII } else { &UNICODE };
        let mut v: Vec<char> = values
            .rev()
            .take(width)
            .map(|p| {
                let i = ((p.clamp(0.0, 100.0) / 100.0) * 7.0).round() as usize;
                glyphs[i.min(7)]
            })
            .collect();
        v.reverse();
        v.into_iter().collect()
    }

    /// The marker that ends a truncated text.
    pub fn ellipsis(&self) -> &'static str {
        if self.ascii { "~" } else { "…" }
    }
}

/// Whether the locale promises UTF-8 (LC_ALL, then LC_CTYPE, then LANG, as setlocale reads them).
pub fn locale_is_utf8(var: impl Fn(&str) -> Option<String>) -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|k| var(k).filter(|v| !v.is_empty()))
        .next()
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

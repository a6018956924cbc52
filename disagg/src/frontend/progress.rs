//! A one-line progress bar on stderr (redrawn in place on a terminal, a line every few
//! seconds otherwise), and notes printed above it.

use std::io::{IsTerminal, Write};

/// Progress display.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    enabled: bool,
    tty: bool,
    last_line_at: f64,
    /// The latest line not written (off a terminal lines are rate-limited); `finish` writes it,
    /// so a log ends on the final count.
    unwritten: Option<String>,
}

impl Progress {
    /// A bar for `total` requests; silent when not `enabled`.
    pub fn new(total: usize, enabled: bool) -> Self {
        Progress {
            total,
            enabled,
            tty: std::io::stderr().is_terminal(),
            last_line_at: f64::NEG_INFINITY,
            unwritten: None,
        }
    }

    /// Redraws the bar.
    pub fn update(&mut self, served: usize, failed: usize, prefill: u32, decode: u32, t: f64) {
        if !self.enabled {
            return;
        }
        let done = served + failed;
        let width = 30;
        let filled = (done * width).checked_div(self.total).unwrap_or(width);
        let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
        let line = format!(
            "[{bar}] {done}/{} done ({failed} failed) · {prefill}P+{decode}D · {t:.1} s",
            self.total
        );
        if !self.tty && t - self.last_line_at < 5.0 {
            self.unwritten = Some(line);
            return;
        }
        self.last_line_at = t;
        self.unwritten = None;
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Prints a note on its own line.
    pub fn note(&mut self, text: &str) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{text}");
    }

    /// Ends the bar's line.
    pub fn finish(&mut self) {
        if self.enabled && self.tty {
            let _ = writeln!(std::io::stderr());
        }
        if let Some(line) = self.unwritten.take() {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}

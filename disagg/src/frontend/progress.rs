//! A one-line progress bar on stderr (redrawn in place on a terminal, a line every few
//! seconds otherwise), and notes printed above it.

use std::io::{IsTerminal, Write};

/// Progress display.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    /// Arrival time of the last request, s: the run lasts about this long plus the drain.
    load_s: f64,
    enabled: bool,
    tty: bool,
    last_line_at: f64,
    /// The latest line not written (off a terminal lines are rate-limited); `finish` writes it,
    /// so a log ends on the final count.
    unwritten: Option<String>,
}

impl Progress {
    /// A bar for `total` requests arriving over `load_s` seconds; silent when not `enabled`.
    pub fn new(total: usize, load_s: f64, enabled: bool) -> Self {
        Progress {
            total,
            load_s,
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
            "[{bar}] {done}/{} done ({failed} failed) · {prefill}P+{decode}D · {}",
            self.total,
            clock(t, self.load_s)
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

    /// The run's expected length, printed before it starts.
    pub fn announce(&mut self, out_dir: &std::path::Path) {
        self.note(&format!(
            "{} requests arriving over {:.0} s (then the last ones finish); report and logs in {}",
            self.total,
            self.load_s,
            out_dir.display()
        ));
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

/// Elapsed time against the load's length: `12.3 of ~60 s`, then `61.0 s (draining)`.
fn clock(t: f64, load_s: f64) -> String {
    if t < load_s {
        format!("{t:.1} of ~{load_s:.0} s")
    } else {
        format!("{t:.1} s (all arrived, finishing)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_counts_toward_the_last_arrival() {
        assert_eq!(super::clock(12.34, 60.0), "12.3 of ~60 s");
        assert_eq!(super::clock(61.0, 60.0), "61.0 s (all arrived, finishing)");
    }
}

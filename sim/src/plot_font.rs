//! One place that makes plotters' text work with nothing installed: the Hack font bundled in
//! `epaint_default_fonts` is registered for every family plotters asks for. Used by the `sim`
//! command, the planner evaluation and the disagg report.

use std::sync::Once;

use plotters::style::{FontStyle, register_font};

/// Registers the bundled font (once per process; later calls do nothing).
pub fn register_bundled_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // An error only means the family is registered already.
            let _ = register_font(
                family,
                FontStyle::Normal,
                epaint_default_fonts::HACK_REGULAR,
            );
        }
    });
}

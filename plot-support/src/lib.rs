//! Plot set-up shared by every PNG writer in the workspace (the `sim` command, the planner
//! evaluation, the disagg report, nixlbench): plotters' text works with nothing installed
//! because the Hack font bundled in `epaint_default_fonts` is registered for every family
//! plotters asks for.

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

/// A drawing error as the message the plot writers return (`.map_err(plot_support::err)`).
pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

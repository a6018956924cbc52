//! Each request's prefill time alone on an idle engine, from Dynamo mocker's polynomial
//! ([`Polynomial::default`], chunked prefill, speedup 1), for scripts that need the timing
//! model without holding a copy of it (`planner/eval/routing/cache_bounds.py`).
//!
//! ```text
//! cargo run -q --release -p engine-timing --example lone-prefill-ms < TOKENS
//! ```
//!
//! Reads prompt token counts, one per line; writes milliseconds, one per line, in order.

use std::error::Error;
use std::io::{BufRead, BufWriter, Write};

use engine_timing::Polynomial;

fn main() -> Result<(), Box<dyn Error>> {
    let model = Polynomial::default();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let tokens: u64 = line
            .trim()
            .parse()
            .map_err(|e| format!("{line:?} is not a token count: {e}"))?;
        // `{}` prints the shortest text that reads back as the same f64.
        writeln!(out, "{}", model.prefill_s(tokens as f64, 1) * 1e3)?;
    }
    out.flush()?;
    Ok(())
}

//! Output: nixlbench's table columns, ratios between libraries, CSV and JSON.

use crate::point::{Outcome, Point};
use serde::Serialize;
use std::fmt::Write as _;

/// One point measured on one library, with the same-run limits.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The configuration.
    pub point: Point,
    /// The measurement.
    pub outcome: Outcome,
    /// One-thread memcpy of the same shape, GB/s.
    pub memcpy_gbps: Option<f64>,
    /// Raw loopback TCP stream, GB/s (TCP runs only).
    pub tcp_gbps: Option<f64>,
}

/// Column header matching [`Row::table_line`].
pub fn header() -> String {
    format!(
        "{:<8} {:<7} {:<5} {:>14} {:>10} {:>3} {:>12} {:>13} {:>13} {:>13} {:>13} {:>13} {:>11} {:>11} {:>9} {:>7}",
        "Lib",
        "Load",
        "Op",
        "Block Size (B)",
        "Batch Size",
        "Thr",
        "B/W (GB/Sec)",
        "Avg Lat. (us)",
        "Avg Prep (us)",
        "P99 Prep (us)",
        "Avg Post (us)",
        "P99 Post (us)",
        "Avg Tx (us)",
        "P99 Tx (us)",
        "Limit",
        "Check"
    )
}

impl Row {
    /// One table line.
    pub fn table_line(&self) -> String {
        let (p, o) = (&self.point, &self.outcome);
        if let Some(e) = &o.error {
            return format!(
                "{:<8} {:<7} {:<5} {:>14} {:>10} {:>3} ERROR: {e}",
                o.lib, p.name, p.op, p.block, p.batch, p.threads
            );
        }
        let limit = self
            .tcp_gbps
            .or(self.memcpy_gbps)
            .map_or("-".into(), |g| format!("{g:.2}"));
        let check = match (o.verified, o.notifs_ok) {
            (Some(false), _) | (_, Some(false)) => "FAIL",
            (Some(true), _) => "ok",
            _ => "-",
        };
        format!(
            "{:<8} {:<7} {:<5} {:>14} {:>10} {:>3} {:>12.3} {:>13.1} {:>13.1} {:>13.1} {:>13.1} {:>13.1} {:>11.1} {:>11.1} {:>9} {:>7}",
            o.lib,
            p.name,
            p.op,
            p.block,
            p.batch,
            p.threads,
            o.gbps,
            o.avg_lat_us,
            o.avg_prep_us,
            o.p99_prep_us,
            o.avg_post_us,
            o.p99_post_us,
            o.avg_tx_us,
            o.p99_tx_us,
            limit,
            check
        )
    }
}

/// The ratio table: first library over each other one, and over the limit.
pub fn ratios(rows: &[Row], first: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<7} {:<5} {:>14} {:>10} {:>3} {:>10} {:>10} {:>8} {:>9} {:>9} {:>10}",
        "Load",
        "Op",
        "Block",
        "Batch",
        "Thr",
        "ours GB/s",
        "other GB/s",
        "BW ratio",
        "Lat ratio",
        "Limit",
        "ours/limit"
    );
    for r in rows.iter().filter(|r| r.outcome.lib == first) {
        for o in rows.iter().filter(|o| {
            o.outcome.lib != first
                && o.point.name == r.point.name
                && o.point.block == r.point.block
                && o.point.batch == r.point.batch
                && o.point.threads == r.point.threads
                && o.point.op == r.point.op
        }) {
            let limit = r.tcp_gbps.or(r.memcpy_gbps);
            let bw = if o.outcome.gbps > 0.0 {
                r.outcome.gbps / o.outcome.gbps
            } else {
                f64::NAN
            };
            let lat = if r.outcome.avg_lat_us > 0.0 {
                o.outcome.avg_lat_us / r.outcome.avg_lat_us
            } else {
                f64::NAN
            };
            let _ = writeln!(
                s,
                "{:<7} {:<5} {:>14} {:>10} {:>3} {:>10.3} {:>10.3} {:>7.2}x {:>8.2}x {:>9} {:>9.0}%",
                r.point.name,
                r.point.op,
                r.point.block,
                r.point.batch,
                r.point.threads,
                r.outcome.gbps,
                o.outcome.gbps,
                bw,
                lat,
                limit.map_or("-".into(), |g| format!("{g:.2}")),
                limit.map_or(f64::NAN, |g| 100.0 * r.outcome.gbps / g)
            );
        }
    }
    s
}

/// CSV with one line per row.
pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "lib,workload,op,block_size,batch_size,threads,iters,gbps,avg_lat_us,avg_prep_us,p99_prep_us,avg_post_us,p99_post_us,avg_tx_us,p99_tx_us,prep_lists_us,memcpy_gbps,tcp_gbps,verified,notifs_ok,error\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |g| format!("{g:.4}"));
    let ob = |v: Option<bool>| v.map_or(String::new(), |b| b.to_string());
    for r in rows {
        let (p, o) = (&r.point, &r.outcome);
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{:.4},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.1},{},{},{},{},{}",
            o.lib,
            p.name,
            p.op,
            p.block,
            p.batch,
            p.threads,
            p.iters,
            o.gbps,
            o.avg_lat_us,
            o.avg_prep_us,
            o.p99_prep_us,
            o.avg_post_us,
            o.p99_post_us,
            o.avg_tx_us,
            o.p99_tx_us,
            o.prep_lists_us,
            opt(r.memcpy_gbps),
            opt(r.tcp_gbps),
            ob(o.verified),
            ob(o.notifs_ok),
            o.error.as_deref().unwrap_or("").replace(',', ";")
        );
    }
    s
}

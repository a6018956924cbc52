//! The unified model gives the numbers of the three copies it replaced (router's
//! `perf_model.rs`, sim's `perf.rs`, planner's `interp.rs`, as of commit 4ea9727), written
//! out below as they were. Where the edge rule changed (the planner's 1-D tables used to
//! extrapolate, now they clamp) the test pins the new behaviour instead.

use engine_timing::{EngineTiming, Grid2d, PerfTable, Polynomial, Table1d};

/// Sim's polynomial prefill, as it was (ms).
fn old_sim_prefill_ms(new_tokens: usize) -> f64 {
    if new_tokens == 0 {
        return 0.0;
    }
    let x = new_tokens as f64;
    4.209989e-7 * x * x + 1.518344e-2 * x + 16.50142
}

/// Sim's polynomial decode, as it was (ms).
fn old_sim_decode_ms(batch: usize, active: usize, capacity: usize) -> f64 {
    if batch == 0 {
        return 0.0;
    }
    let u = if capacity == 0 {
        1.0
    } else {
        (active as f64 / capacity as f64).min(1.0)
    };
    (-25.74 * u * u + 54.01 * u + 5.74).max(1.0)
}

/// Router's prefill pass, as it was (s).
fn old_router_prefill_pass_s(tokens: f64) -> f64 {
    if tokens <= 0.0 {
        return 0.0;
    }
    let [p0, p1, p2] = [16.50142, 1.518344e-2, 4.209989e-7];
    (p0 + p1 * tokens + p2 * tokens * tokens) / 1e3
}

/// Router's decode step, as it was (s), default capacity and no per-sequence term.
fn old_router_decode_step_s(batch: u32, active: f64) -> f64 {
    if batch == 0 {
        return 0.0;
    }
    let u = (active / (16_384.0 * 64.0)).clamp(0.0, 1.0);
    let [d0, d1, d2] = [5.74, 54.01, -25.74];
    (d0 + d1 * u + d2 * u * u).max(1.0) / 1e3
}

/// Sim's table interpolation, as it was (clamped).
fn old_sim_interp1(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    if xs.len() == 1 || x <= xs[0] {
        return ys[0];
    }
    let last = xs.len() - 1;
    if x >= xs[last] {
        return ys[last - 1] + (ys[last] - ys[last - 1]);
    }
    let i = xs.partition_point(|&v| v <= x) - 1;
    let f = (x - xs[i]) / (xs[i + 1] - xs[i]);
    ys[i] + f * (ys[i + 1] - ys[i])
}

/// Planner's 1-D table, as it was (extrapolated at both ends).
fn old_planner_table(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    let n = xs.len();
    let i = match xs.partition_point(|&v| v <= x) {
        0 => 0,
        k if k >= n => n - 2,
        k => k - 1,
    };
    ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn polynomial_is_bit_identical_to_the_simulators() {
    let m = EngineTiming::Polynomial;
    for tokens in (0..=16_384).step_by(7) {
        assert_eq!(
            m.prefill_ms(tokens).to_bits(),
            old_sim_prefill_ms(tokens).to_bits()
        );
    }
    for batch in [0, 1, 7, 64, 256] {
        for active in (0..2_000_000).step_by(9_973) {
            for cap in [0, 1_000, 1_048_576] {
                let (new, old) = (
                    m.decode_ms(batch, active, cap),
                    old_sim_decode_ms(batch, active, cap),
                );
                assert_eq!(new.to_bits(), old.to_bits(), "{batch} {active} {cap}");
            }
        }
    }
}

#[test]
fn polynomial_matches_the_routers_to_rounding() {
    // The router added the terms in the other order: equal to the last bits.
    let m = Polynomial::default();
    for tokens in (0..=20_000).step_by(13) {
        let t = f64::from(tokens);
        assert!(
            close(m.prefill_pass_s(t), old_router_prefill_pass_s(t)),
            "{t}"
        );
    }
    for batch in [0u32, 1, 46, 256] {
        for active in (0..1_200_000).step_by(7_919) {
            let a = f64::from(active);
            assert!(close(
                m.decode_step_s(batch, a),
                old_router_decode_step_s(batch, a)
            ));
        }
    }
}

#[test]
fn tables_match_inside_and_the_simulators_rule_outside() {
    let xs = vec![128.0, 512.0, 2048.0, 8192.0];
    let ys = vec![18.5, 24.3, 49.9, 169.1];
    let t = Table1d::new(xs.clone(), ys.clone()).unwrap();
    for i in 0..=1000 {
        let x = f64::from(i) * 10.0;
        // Sim's rule everywhere (clamped), to rounding.
        assert!(close(t.eval(x), old_sim_interp1(&xs, &ys, x)), "{x}");
        // The planner's inside the axis (bit-identical: same formula).
        if x > xs[0] && x < xs[3] {
            assert_eq!(
                t.eval(x).to_bits(),
                old_planner_table(&xs, &ys, x).to_bits()
            );
        }
    }
    // What changed for the planner: outside the axis the end value holds.
    assert_eq!(t.eval(16_384.0), 169.1);
    assert!(old_planner_table(&xs, &ys, 16_384.0) > 169.1);
    assert_eq!(t.eval(0.0), 18.5);
    assert!(old_planner_table(&xs, &ys, 0.0) < 18.5);
}

#[test]
fn decode_table_matches_the_simulators_bilinear_rule() {
    let kv = vec![0.0, 100_000.0, 500_000.0];
    let ctx = vec![512.0, 2048.0, 8192.0];
    let ms = vec![
        vec![6.0, 6.5, 7.0],
        vec![9.0, 10.0, 11.5],
        vec![20.0, 22.0, 26.0],
    ];
    let table = PerfTable::new(
        vec![0.0, 8192.0],
        vec![0.0, 100.0],
        kv.clone(),
        ctx.clone(),
        ms.clone(),
    )
    .unwrap();
    let grid = Grid2d::new(ctx.clone(), kv.clone(), ms.clone()).unwrap();
    let m = EngineTiming::Table(table);
    for batch in [1usize, 3, 40, 200] {
        for active in (0..700_000).step_by(4_999) {
            let c = active as f64 / batch as f64;
            let row = |r: &Vec<f64>| old_sim_interp1(&ctx, r, c);
            let old = if active as f64 >= kv[2] {
                row(&ms[1]) + (row(&ms[2]) - row(&ms[1]))
            } else {
                let i = kv.partition_point(|&v| v <= active as f64) - 1;
                let f = (active as f64 - kv[i]) / (kv[i + 1] - kv[i]);
                row(&ms[i]) + f * (row(&ms[i + 1]) - row(&ms[i]))
            };
            let new = m.decode_ms(batch, active, 0);
            assert!(close(new, old), "{batch} {active}: {new} vs {old}");
            assert_eq!(new, grid.eval(c, active as f64));
        }
    }
}

//! Queueing approximations used to size pools for a latency *percentile* instead of a mean:
//! Erlang C for the chance of waiting in an M/M/c queue, and the Allen–Cunneen correction
//! that carries it over to general service times (M/G/c) through the squared coefficient of
//! variation of service.

/// Probability that an arrival waits in an M/M/c queue with `servers` servers and offered
/// load `a = λ·E[S]` (in Erlangs). 1 when the queue is unstable (`a ≥ servers`).
pub fn erlang_c(servers: u32, a: f64) -> f64 {
    if servers == 0 || a >= f64::from(servers) {
        return 1.0;
    }
    if a <= 0.0 {
        return 0.0;
    }
    // Erlang B by its stable recursion, then C from B.
    let mut b = 1.0;
    for k in 1..=servers {
        b = a * b / (f64::from(k) + a * b);
    }
    let c = f64::from(servers);
    (c * b / (c - a * (1.0 - b))).clamp(0.0, 1.0)
}

/// An M/G/c queue: Poisson arrivals at `rate` per second onto `servers` identical servers
/// whose service time has mean `mean_service` seconds and squared coefficient of variation
/// `scv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MgcQueue {
    /// Arrivals per second.
    pub rate: f64,
    /// Servers.
    pub servers: u32,
    /// Mean service time in seconds.
    pub mean_service: f64,
    /// Squared coefficient of variation of the service time.
    pub scv: f64,
}

impl MgcQueue {
    /// Server utilisation `λ·E[S]/c`.
    pub fn utilisation(&self) -> f64 {
        if self.servers == 0 {
            return f64::INFINITY;
        }
        self.rate * self.mean_service / f64::from(self.servers)
    }

    /// `P(W > t)` for the queueing delay `W`: Erlang C times an exponential tail whose decay
    /// rate `(cμ − λ)` is slowed by `(1 + scv)/2` (Allen–Cunneen). 1 for an unstable queue.
    pub fn wait_exceeds(&self, t: f64) -> f64 {
        if t < 0.0 {
            return 1.0;
        }
        if self.utilisation() >= 1.0 {
            return 1.0;
        }
        let a = self.rate * self.mean_service;
        let p_wait = erlang_c(self.servers, a);
        let decay =
            (f64::from(self.servers) / self.mean_service - self.rate) * 2.0 / (1.0 + self.scv);
        p_wait * (-decay * t).exp()
    }

    /// Fraction of requests whose total latency (wait + own service) exceeds `limit`, for
    /// service times drawn from `services` (the request mix), assuming the wait is
    /// independent of the request's own service time.
    pub fn miss_fraction(&self, services: &[f64], limit: f64) -> f64 {
        if services.is_empty() {
            return 0.0;
        }
        services
            .iter()
            .map(|&s| self.wait_exceeds(limit - s))
            .sum::<f64>()
            / services.len() as f64
    }

    /// The `q`-quantile of total latency over the mix `services`, by bisection on
    /// [`MgcQueue::miss_fraction`]; `f64::INFINITY` for an unstable queue.
    pub fn latency_quantile(&self, services: &[f64], q: f64) -> f64 {
        if self.utilisation() >= 1.0 {
            return f64::INFINITY;
        }
        let miss = 1.0 - q.clamp(0.0, 1.0);
        let mut lo = 0.0;
        let mut hi = services.iter().copied().fold(0.0, f64::max) + self.mean_service;
        while self.miss_fraction(services, hi) > miss {
            hi *= 2.0;
            if hi > 1e9 {
                return f64::INFINITY;
            }
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.miss_fraction(services, mid) > miss {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_known_values() {
        // M/M/1: P(wait) = ρ.
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        // c = 2, a = 1: C = 1/3.
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(erlang_c(3, 3.0), 1.0);
        assert_eq!(erlang_c(3, 0.0), 0.0);
        // More servers at the same load wait less.
        assert!(erlang_c(4, 2.0) < erlang_c(3, 2.0));
    }

    #[test]
    fn mm1_wait_tail_is_exact() {
        // M/M/1 (scv 1): P(W > t) = ρ·exp(−(μ−λ)t).
        let q = MgcQueue {
            rate: 8.0,
            servers: 1,
            mean_service: 0.1,
            scv: 1.0,
        };
        let expect = 0.8 * (-(10.0 - 8.0) * 0.5f64).exp();
        assert!((q.wait_exceeds(0.5) - expect).abs() < 1e-12);
        assert_eq!(q.wait_exceeds(-0.1), 1.0);
    }

    #[test]
    fn deterministic_service_waits_less_than_exponential() {
        let exp = MgcQueue {
            rate: 15.0,
            servers: 2,
            mean_service: 0.1,
            scv: 1.0,
        };
        let det = MgcQueue { scv: 0.0, ..exp };
        assert!(det.wait_exceeds(0.2) < exp.wait_exceeds(0.2));
    }

    #[test]
    fn latency_quantile_inverts_miss_fraction() {
        let q = MgcQueue {
            rate: 12.0,
            servers: 2,
            mean_service: 0.1,
            scv: 0.3,
        };
        let services = [0.05, 0.1, 0.15];
        let p95 = q.latency_quantile(&services, 0.95);
        assert!((q.miss_fraction(&services, p95) - 0.05).abs() < 1e-6);
        assert!(p95 > 0.15);
        let overloaded = MgcQueue { rate: 25.0, ..q };
        assert_eq!(overloaded.latency_quantile(&services, 0.95), f64::INFINITY);
    }
}

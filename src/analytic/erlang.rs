//! Erlang-B/C by numerically stable recurrences (no factorials: safe for
//! c in the hundreds of thousands) and the exact M/M/c waiting-time law.

/// Erlang-B blocking probability for `c` servers and offered load `a = λ/μ`,
/// by `B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1))`.
pub fn erlang_b(c: u64, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (k as f64 + a * b);
    }
    b
}

/// Erlang-C probability that an arrival waits, `C = c·B / (c − a·(1 − B))`;
/// 1 when `a ≥ c` (unstable).
pub fn erlang_c(c: u64, a: f64) -> f64 {
    if a >= c as f64 {
        return 1.0;
    }
    let b = erlang_b(c, a);
    c as f64 * b / (c as f64 - a * (1.0 - b))
}

/// An M/M/c queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmcQueue {
    /// Servers.
    pub c: u64,
    /// Arrival rate, 1/s.
    pub lambda: f64,
    /// Service rate of one server, 1/s.
    pub mu: f64,
}

impl MmcQueue {
    /// Utilisation ρ = λ / (c μ).
    pub fn rho(&self) -> f64 {
        self.lambda / (self.c as f64 * self.mu)
    }

    /// Whether the queue is stable (ρ < 1).
    pub fn stable(&self) -> bool {
        self.rho() < 1.0
    }

    /// P(wait > 0).
    pub fn p_wait(&self) -> f64 {
        erlang_c(self.c, self.lambda / self.mu)
    }

    /// Mean wait, s (infinite when unstable).
    pub fn mean_wait_s(&self) -> f64 {
        if !self.stable() {
            return f64::INFINITY;
        }
        self.p_wait() / (self.c as f64 * self.mu - self.lambda)
    }

    /// P(wait > t): `C·exp(−(cμ − λ)·t)`.
    pub fn p_wait_exceeds(&self, t_s: f64) -> f64 {
        if !self.stable() {
            return 1.0;
        }
        self.p_wait() * (-(self.c as f64 * self.mu - self.lambda) * t_s).exp()
    }

    /// The `q` quantile of the wait (e.g. 0.99), s: 0 when P(wait > 0) ≤ 1 − q.
    pub fn wait_quantile_s(&self, q: f64) -> f64 {
        if !self.stable() {
            return f64::INFINITY;
        }
        let c = self.p_wait();
        let tail = 1.0 - q;
        if c <= tail {
            0.0
        } else {
            (c / tail).ln() / (self.c as f64 * self.mu - self.lambda)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_values() {
        // c = 10, a = 8: Erlang-C = 0.40918 (standard tables).
        assert!(
            (erlang_c(10, 8.0) - 0.40918).abs() < 5e-6,
            "{}",
            erlang_c(10, 8.0)
        );
        // Erlang-B c = 10, a = 8: 0.12166.
        assert!(
            (erlang_b(10, 8.0) - 0.12166).abs() < 5e-6,
            "{}",
            erlang_b(10, 8.0)
        );
        // c = 1 reduces to M/M/1: C = ρ.
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        assert_eq!(erlang_c(5, 5.0), 1.0);
    }

    #[test]
    fn large_c_is_finite_and_sane() {
        let c = 100_000u64;
        let v = erlang_c(c, 0.99 * c as f64);
        assert!(v.is_finite() && v > 0.0 && v < 1.0, "{v}");
        // Heavy-traffic (Halfin–Whitt) regime: β = (c − a)/√a ≈ 3.16 gives a small C.
        assert!(v < 0.01, "{v}");
    }

    #[test]
    fn mm1_formulas() {
        let q = MmcQueue {
            c: 1,
            lambda: 0.5,
            mu: 1.0,
        };
        assert!((q.mean_wait_s() - 1.0).abs() < 1e-12); // ρ/(μ−λ) = 0.5/0.5
        assert!((q.wait_quantile_s(0.99) - (0.5f64 / 0.01).ln() / 0.5).abs() < 1e-12);
    }
}

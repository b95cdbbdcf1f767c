//! Fleet shapes the planners size.

use kvfleet_routers::RouterSpec;
use serde::Serialize;

use crate::engine::PoolConfig;
use crate::profile::Profile;

/// A fleet shape: which pools exist and how requests are routed to them.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetPlan {
    /// Short-pool threshold B (its max context), or `None` for one homogeneous pool.
    pub b_short: Option<u32>,
    /// γ of compress-and-route (1 = plain length routing).
    pub gamma: f64,
    /// Short-pool profile.
    pub short: Profile,
    /// Long-pool (or homogeneous-pool) profile.
    pub long: Profile,
    /// Long-pool max context, tokens.
    pub long_max_ctx: u32,
}

/// One pool of a sized fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolShape {
    /// Pool id (`short`, `long` or `homo`).
    pub id: String,
    /// Profile name.
    pub gpu: String,
    /// Max context, tokens.
    pub max_ctx: u32,
}

impl FleetPlan {
    /// A homogeneous fleet of `profile` at `max_ctx`.
    pub fn homogeneous(profile: Profile, max_ctx: u32) -> Self {
        FleetPlan {
            b_short: None,
            gamma: 1.0,
            short: profile.clone(),
            long: profile,
            long_max_ctx: max_ctx,
        }
    }

    /// The pools' shapes, in fleet order.
    pub fn shapes(&self) -> Vec<PoolShape> {
        match self.b_short {
            None => vec![PoolShape {
                id: "homo".into(),
                gpu: self.long.name.clone(),
                max_ctx: self.long_max_ctx,
            }],
            Some(b) => vec![
                PoolShape {
                    id: "short".into(),
                    gpu: self.short.name.clone(),
                    max_ctx: b,
                },
                PoolShape {
                    id: "long".into(),
                    gpu: self.long.name.clone(),
                    max_ctx: self.long_max_ctx,
                },
            ],
        }
    }

    /// Pool configurations for the given instance counts (one per shape).
    pub fn pools(&self, counts: &[u32]) -> Vec<PoolConfig> {
        self.shapes()
            .into_iter()
            .zip(counts)
            .enumerate()
            .map(|(i, (s, &n))| {
                let profile = if self.b_short.is_some() && i == 0 {
                    self.short.clone()
                } else {
                    self.long.clone()
                };
                PoolConfig::new(s.id, profile, n.max(1), s.max_ctx)
            })
            .collect()
    }

    /// The router: length routing (smallest pool that fits), or
    /// compress-and-route with γ and B when γ > 1.
    pub fn router(&self) -> RouterSpec {
        match (self.b_short, self.gamma > 1.0) {
            (Some(b), true) => {
                let mut spec =
                    RouterSpec::default_for("compress-and-route").expect("built-in router kind");
                if let RouterSpec::CompressAndRoute {
                    gamma,
                    threshold_tok,
                    ..
                } = &mut spec
                {
                    *gamma = self.gamma;
                    *threshold_tok = Some(b);
                }
                spec
            }
            _ => RouterSpec::length(),
        }
    }

    /// Cost per hour of a fleet with these counts.
    pub fn cost_per_hr(&self, counts: &[u32]) -> f64 {
        self.pools(counts)
            .iter()
            .map(|p| p.instances as f64 * p.profile.cost_per_hr)
            .sum()
    }

    /// GPUs of a fleet with these counts.
    pub fn gpus(&self, counts: &[u32]) -> u64 {
        self.pools(counts).iter().map(|p| p.gpus()).sum()
    }
}

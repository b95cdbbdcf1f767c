//! A deployment scenario resolved and validated: clients with their loads
//! and SLOs, designs as pools of whole-tray workers on one rack (the types;
//! [`super::resolve`] builds them from a file).

use serde::Serialize;

use super::rack::RackPreset;
use crate::error::InputError;
use crate::profile::Profile;
use crate::rng::SimRng;
use crate::workload::lengths::LengthModel;

pub use super::resolve::{check_design, load, parse_workers, resolve, worker_profile};

/// A length uniform in `[floor(ratio·n), n]` (at least 1).
pub fn draw_len(rng: &mut SimRng, n: u32, ratio: f64) -> u32 {
    use rand::RngExt;
    let lo = ((ratio * n as f64).floor() as u32).clamp(1, n.max(1));
    rng.random_range(lo..=n.max(1))
}

/// How a client loads the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// Poisson arrivals, requests/s.
    RateRps(f64),
    /// Closed loop of this many users, no think time.
    Concurrency(u32),
}

impl Load {
    /// The load multiplied by `k` (a concurrency rounds, at least 1).
    pub fn scaled(self, k: f64) -> Load {
        match self {
            Load::RateRps(r) => Load::RateRps(r * k),
            Load::Concurrency(c) => Load::Concurrency(((c as f64 * k).round() as u32).max(1)),
        }
    }

    /// `2.5 req/s` or `conc 128`.
    pub fn label(self) -> String {
        match self {
            Load::RateRps(r) => format!("{r} req/s"),
            Load::Concurrency(c) => format!("conc {c}"),
        }
    }
}

/// One client.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    /// Name.
    pub name: String,
    /// Input length N (uniform in `[r·N, N]`), tokens (CDF clients: the mean, rounded).
    pub isl: u32,
    /// Output length N, tokens (CDF clients: the mean, rounded).
    pub osl: u32,
    /// The total-token CDF the lengths come from, if any.
    pub cdf: Option<String>,
    /// The CDF and its input fraction, when the lengths come from one.
    #[serde(skip)]
    pub lengths: Option<LengthModel>,
    /// Range ratio r.
    pub range_ratio: f64,
    /// Load.
    pub load: Load,
    /// TTFT SLO, ms.
    pub ttft_ms: f64,
    /// TPOT SLO, ms (the tighter of `tpot_ms` and `1000 / min_interactivity`).
    pub tpot_ms: Option<f64>,
}

impl Client {
    /// Draw one request's (ISL, OSL).
    pub fn draw(&self, rng: &mut SimRng) -> (u32, u32) {
        match &self.lengths {
            Some(m) => m.sample(rng),
            None => (
                draw_len(rng, self.isl, self.range_ratio),
                draw_len(rng, self.osl, self.range_ratio),
            ),
        }
    }

    /// Mean input and output lengths of the draws, tokens.
    pub fn mean_lengths_tok(&self) -> (f64, f64) {
        if let Some(m) = &self.lengths {
            return (m.mean_isl(), m.mean_osl());
        }
        let m = |n: u32| {
            let lo = ((self.range_ratio * n as f64).floor() as u32).clamp(1, n.max(1));
            (lo as f64 + n as f64) / 2.0
        };
        (m(self.isl), m(self.osl))
    }

    /// Largest ISL + OSL, tokens.
    pub fn max_ctx_tok(&self) -> u32 {
        match &self.lengths {
            Some(LengthModel::Cdf { cdf, .. }) => cdf.max_tokens() + 1,
            _ => self.isl + self.osl + 1,
        }
    }
}

/// What a pool does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Prefill only; hands KV caches to its decode pool.
    Prefill,
    /// Decode only; receives KV caches.
    Decode,
    /// Both phases (aggregated serving).
    Aggregated,
}

impl Role {
    /// Parse `prefill`, `decode` or `aggregated` (and synonyms); `field` names the field in errors.
    pub fn parse(field: &str, s: &str) -> Result<Role, InputError> {
        match s.to_ascii_lowercase().as_str() {
            "prefill" | "ctx" | "context" => Ok(Role::Prefill),
            "decode" | "gen" | "generation" => Ok(Role::Decode),
            "aggregated" | "agg" | "both" => Ok(Role::Aggregated),
            _ => Err(InputError::field(
                field,
                format!("expected prefill, decode or aggregated, got `{s}`"),
            )),
        }
    }

    /// `prefill`, `decode` or `aggregated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Prefill => "prefill",
            Role::Decode => "decode",
            Role::Aggregated => "aggregated",
        }
    }
}

/// One pool of whole-tray workers.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Worker spec (computed profile).
    pub spec: String,
    /// Workers.
    pub workers: u32,
    /// One worker's profile.
    pub profile: Profile,
    /// Trays per worker.
    pub trays_per_worker: u32,
    /// Decode pool index (prefill pools).
    pub decode: Option<usize>,
    /// Client indices entering here.
    pub clients: Vec<usize>,
    /// Running sequences per worker, if capped.
    pub max_batch: Option<u32>,
}

impl Pool {
    /// GPUs of the pool.
    pub fn gpus(&self) -> u32 {
        self.workers * self.profile.gpus_per_instance
    }

    /// Trays of the pool.
    pub fn trays(&self) -> u32 {
        self.workers * self.trays_per_worker
    }
}

/// A design: pools placed on the rack's trays in order.
#[derive(Debug, Clone)]
pub struct Design {
    /// Name.
    pub name: String,
    /// Note from the file.
    pub note: Option<String>,
    /// Pools in tray order.
    pub pools: Vec<Pool>,
    /// KV bytes per token of the served model (same for every pair).
    pub kv_bytes_per_token: f64,
}

impl Design {
    /// Trays used.
    pub fn trays(&self) -> u32 {
        self.pools.iter().map(Pool::trays).sum()
    }

    /// GPUs used.
    pub fn gpus(&self) -> u32 {
        self.pools.iter().map(Pool::gpus).sum()
    }
}

/// Run settings.
#[derive(Debug, Clone, Serialize)]
pub struct SimSettings {
    /// Open-loop arrival window, s.
    pub duration_s: f64,
    /// Open-loop warm-up fraction.
    pub warmup_frac: f64,
    /// Closed-loop prompts per unit of concurrency.
    pub prompts_per_conc: u32,
    /// Required SLO attainment.
    pub slo_target: f64,
    /// Default chunked-prefill budget, tokens.
    pub chunk_tok: u32,
}

/// A validated deployment scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Description.
    pub description: Option<String>,
    /// Rack.
    pub rack: &'static RackPreset,
    /// Root seed.
    pub seed: u64,
    /// Run settings.
    pub sim: SimSettings,
    /// Clients.
    pub clients: Vec<Client>,
    /// Named designs.
    pub designs: Vec<Design>,
    /// Candidate shapes for `rack-plan`, if given.
    pub plan: Option<super::file::RackPlanToml>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_scale() {
        assert_eq!(Load::RateRps(2.0).scaled(1.5), Load::RateRps(3.0));
        assert_eq!(Load::Concurrency(3).scaled(0.1), Load::Concurrency(1));
        assert_eq!(Load::Concurrency(128).scaled(2.0), Load::Concurrency(256));
    }
}

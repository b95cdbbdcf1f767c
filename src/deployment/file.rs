//! The multi-client deployment scenario file: `[[clients]]` (who sends what,
//! at which load, under which SLOs) and `[[deployments]]` (named designs:
//! pools of `N x SPEC` workers on the rack's trays, each client mapped to its
//! entry pools, shared pools allowed), plus an optional `[rack_plan]` table
//! of candidate worker shapes for `kvfleet rack-plan`.
//!
//! ```toml
//! rack = "gb200-nvl72"
//! [[clients]]
//! name = "chat"
//! isl = 1024
//! osl = 1024
//! concurrency = 16          # or rate_rps = 2.0
//! ttft_ms = 2000
//! min_interactivity = 20    # tok/s/user (TPOT ≤ 50 ms)
//! [[deployments]]
//! name = "small"
//! pools = [
//!   { name = "p", role = "prefill", workers = "1xgb200:deepseek-r1:tep4:fp4", decode = "d", clients = ["chat"] },
//!   { name = "d", role = "decode", workers = "1xgb200:deepseek-r1:tep8:fp4" },
//! ]
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::error::InputError;

/// A scenario file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    /// Free text: the question the file asks.
    #[serde(default)]
    pub description: Option<String>,
    /// Rack preset (default `gb200-nvl72`).
    #[serde(default = "default_rack")]
    pub rack: String,
    /// Root seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Run settings.
    #[serde(default)]
    pub sim: SimToml,
    /// The clients.
    #[serde(default)]
    pub clients: Vec<ClientToml>,
    /// Named designs.
    #[serde(default)]
    pub deployments: Vec<DesignToml>,
    /// Candidate worker shapes for `rack-plan`.
    #[serde(default)]
    pub rack_plan: Option<RackPlanToml>,
}

fn default_rack() -> String {
    "gb200-nvl72".into()
}
fn default_seed() -> u64 {
    1
}

/// `[sim]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimToml {
    /// Open-loop clients: arrivals over this long, s.
    #[serde(default = "default_duration")]
    pub duration_s: f64,
    /// Open-loop clients: fraction of the duration excluded from metrics (by arrival).
    #[serde(default = "default_warmup")]
    pub warmup_frac: f64,
    /// Closed-loop clients: `num_prompts = this × concurrency` (InferenceMAX: 10).
    #[serde(default = "default_ppc")]
    pub prompts_per_conc: u32,
    /// Fraction of a client's requests that must meet its SLOs for the client to meet them.
    #[serde(default = "default_target")]
    pub slo_target: f64,
    /// Chunked-prefill budget of every worker without its own `max_tokens`, tokens.
    #[serde(default = "default_chunk")]
    pub max_num_batched_tokens: u32,
}

fn default_duration() -> f64 {
    300.0
}
fn default_warmup() -> f64 {
    0.1
}
fn default_ppc() -> u32 {
    10
}
fn default_target() -> f64 {
    0.9
}
fn default_chunk() -> u32 {
    8192
}

impl Default for SimToml {
    fn default() -> Self {
        SimToml {
            duration_s: default_duration(),
            warmup_frac: default_warmup(),
            prompts_per_conc: default_ppc(),
            slo_target: default_target(),
            max_num_batched_tokens: default_chunk(),
        }
    }
}

/// One `[[clients]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientToml {
    /// Client name (referenced by pools' `clients`).
    pub name: String,
    /// Input length N (uniform in `[r·N, N]`), tokens.
    #[serde(default)]
    pub isl: Option<u32>,
    /// Output length N (uniform in `[r·N, N]`), tokens.
    #[serde(default)]
    pub osl: Option<u32>,
    /// Instead of `isl`/`osl`: a total-token CDF file (or a built-in name:
    /// `azure`, `lmsys`, ...) split by `input_frac`.
    #[serde(default)]
    pub cdf: Option<String>,
    /// Fraction of a CDF total that is input (default 0.5).
    #[serde(default)]
    pub input_frac: Option<f64>,
    /// Range ratio r (default 0.8, InferenceMAX's setting).
    #[serde(default = "default_ratio")]
    pub range_ratio: f64,
    /// Open loop: Poisson arrivals at this rate, requests/s.
    #[serde(default)]
    pub rate_rps: Option<f64>,
    /// Closed loop: this many users with no think time (benchmark convention).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// TTFT SLO, ms.
    pub ttft_ms: f64,
    /// TPOT SLO, ms.
    #[serde(default)]
    pub tpot_ms: Option<f64>,
    /// Interactivity SLO, tokens/s/user (TPOT ≤ 1000 / this ms).
    #[serde(default)]
    pub min_interactivity: Option<f64>,
}

fn default_ratio() -> f64 {
    0.8
}

/// One `[[deployments]]` table: a named design.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesignToml {
    /// Design name.
    pub name: String,
    /// Free text shown beside the design (e.g. where it comes from).
    #[serde(default)]
    pub note: Option<String>,
    /// Pools in tray order.
    pub pools: Vec<PoolToml>,
}

/// One pool of a design.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolToml {
    /// Pool name.
    pub name: String,
    /// `prefill`, `decode` or `aggregated` (both phases).
    pub role: String,
    /// Workers as `N x SPEC` (e.g. `4xgb200:deepseek-r1:tep8:fp4:mtp3`).
    pub workers: String,
    /// Prefill pools: the decode pool their KV caches go to.
    #[serde(default)]
    pub decode: Option<String>,
    /// Prefill and aggregated pools: the clients entering here (a client's
    /// first pool in file order is its primary, later ones take overflow).
    #[serde(default)]
    pub clients: Vec<String>,
    /// Running sequences per worker (`gen_batch_size`; default: the profile's).
    #[serde(default)]
    pub max_batch: Option<u32>,
    /// Tokens per step (chunked-prefill budget, `max_num_tokens`).
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

/// `[rack_plan]`: the candidate worker shapes of the search.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RackPlanToml {
    /// Prefill worker specs.
    pub prefill: Vec<String>,
    /// Decode worker specs.
    pub decode: Vec<String>,
    /// Screened candidates verified by simulation per client.
    #[serde(default = "default_verify")]
    pub verify_top: usize,
    /// Most prefill or decode workers per pool tried.
    #[serde(default = "default_max_workers")]
    pub max_workers: u32,
}

fn default_verify() -> usize {
    4
}
fn default_max_workers() -> u32 {
    16
}

/// True when a TOML text is a deployment scenario (it has `[[clients]]`).
pub fn is_deployment_scenario(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("clients"))
}

impl DeploymentFile {
    /// Read and parse a file (structure only; [`super::resolve`] validates the contents).
    pub fn load(path: &Path) -> Result<DeploymentFile, InputError> {
        let text = crate::input_file::read_text(path)?;
        let mut f = Self::parse(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for c in &mut f.clients {
            if let Some(cdf) = &mut c.cdf
                && (cdf.contains('/') || cdf.ends_with(".json") || cdf.ends_with(".csv"))
                && !Path::new(cdf.as_str()).is_absolute()
            {
                *cdf = base.join(cdf.as_str()).to_string_lossy().into_owned();
            }
        }
        Ok(f)
    }

    /// Parse the text of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<DeploymentFile, InputError> {
        toml::from_str(text).map_err(|e| InputError::File {
            path: path.to_path_buf(),
            reason: e.to_string().trim().replace('\n', " "),
        })
    }
}

//! `kvfleet sizing-calc` (being built; see issue 7).

/// Flags of `sizing-calc`.
#[derive(Debug, clap::Args)]
pub struct SizingCalcArgs {
    /// Output flags.
    #[command(flatten)]
    pub output: super::output::OutputArgs,
}

/// Run `sizing-calc`.
pub fn run(_args: SizingCalcArgs) -> anyhow::Result<()> {
    anyhow::bail!("sizing-calc is not built yet")
}

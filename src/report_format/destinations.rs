//! The files a run's flags ask for (`--out`, `--csv`, `--plot`,
//! `--plot-dir`) and writing them — shared by every front end, so a file
//! written from Python is the file the CLI writes.

use std::path::PathBuf;

use anyhow::Context;

use crate::api::{Command, Report};

/// The output destinations a command was given.
#[derive(Debug, Default, Clone)]
pub struct Destinations {
    /// `--json`: JSON on stdout instead of the table (CLI only).
    pub json: bool,
    /// `--out FILE`: the JSON report (for `calibrate`, the TOML profile).
    pub out: Option<PathBuf>,
    /// `--csv FILE`.
    pub csv: Option<PathBuf>,
    /// `--plot FILE.svg`.
    pub plot: Option<PathBuf>,
    /// `--plot-dir DIR`.
    pub plot_dir: Option<PathBuf>,
    /// `--diagram FILE.svg` (cluster).
    pub diagram: Option<PathBuf>,
}

impl Destinations {
    /// The destinations named by a command's flags.
    pub fn of(command: &Command) -> Destinations {
        let mut d = Destinations {
            json: match command {
                Command::Calibrate(a) => a.json,
                c => c.output().is_some_and(|o| o.json),
            },
            ..Destinations::default()
        };
        for (flag, path, _) in command.output_paths() {
            let slot = match flag {
                "--out" => &mut d.out,
                "--csv" => &mut d.csv,
                "--plot" => &mut d.plot,
                "--diagram" => &mut d.diagram,
                _ => &mut d.plot_dir,
            };
            *slot = Some(path.to_path_buf());
        }
        d
    }

    /// Write every file the flags name; returns the files written, in
    /// order (`--out`, `--csv`, `--plot`, then the `--plot-dir` charts).
    pub fn write_files(&self, report: &Report) -> anyhow::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        let write = |path: &PathBuf, text: String| {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        };
        if let Some(path) = &self.out {
            let text = match report {
                Report::Calibration(c) => c.file.clone(),
                r => format!("{}\n", r.to_json_pretty().context("serialising report")?),
            };
            write(path, text)?;
            written.push(path.clone());
        }
        if let Some(path) = &self.csv
            && let Some(csv) = report.csv()
        {
            write(path, csv)?;
            written.push(path.clone());
        }
        if let Some(path) = &self.plot
            && report.write_plot(path)?
        {
            written.push(path.clone());
        }
        if let Some(path) = &self.diagram
            && report.write_diagram(path)?
        {
            written.push(path.clone());
        }
        if let Some(dir) = &self.plot_dir {
            written.extend(report.write_plot_dir(dir)?);
        }
        Ok(written)
    }
}

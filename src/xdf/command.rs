//! The `heloflow xdf ...` subcommands: `info` (what a recording holds) and `repair` (complete a
//! cut-off or damaged recording). `main.rs` only forwards to [`run`].
//!
//! ```text
//! heloflow xdf info session.xdf [--json]
//! heloflow xdf repair session.xdf [--out repaired.xdf] [--json]
//! ```

use std::path::PathBuf;

use clap::Subcommand;

use super::{info, repair};

/// The `xdf` subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum XdfCommand {
    /// Summarise a recording: streams, rates, clock offsets, gaps, markers, footers, damage.
    Info {
        /// The XDF file.
        file: PathBuf,
        /// JSON for programs instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Complete a cut-off or damaged recording: keep every intact chunk, add missing footers.
    Repair {
        /// The XDF file.
        file: PathBuf,
        /// Write the repaired file here instead of replacing FILE (safely, via a temporary file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `xdf` subcommand, printing its result; the error is the message to show.
pub fn run(command: XdfCommand) -> Result<(), String> {
    match command {
        XdfCommand::Info { file, json } => {
            let summary = info::summarize(&file)
                .map_err(|e| format!("heloflow xdf info: {}: {e}", file.display()))?;
            if json {
                println!("{}", summary.to_json());
            } else {
                print!("{}", summary.to_text());
            }
            Ok(())
        }
        XdfCommand::Repair { file, out, json } => {
            let report = repair::repair(&file, out.as_deref())
                .map_err(|e| format!("heloflow xdf repair: {}: {e}", file.display()))?;
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            Ok(())
        }
    }
}

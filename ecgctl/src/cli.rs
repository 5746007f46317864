//! The commands. Every option can also come from the environment
//! (`ECG_INGEST_URL`, `ECG_QUERY_URL`, `ECGCTL_HOME`, `ECGCTL_CLIENT_ID`,
//! `ECGCTL_CLIENT_SECRET`), so scripts need not repeat them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "ecgctl",
    version,
    about = "Upload ECG files to ecg-stream, follow their insights, export and score their beats"
)]
pub struct Cli {
    #[command(flatten)]
    pub endpoints: Endpoints,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the services are and where the token is kept.
#[derive(Debug, Clone, Args)]
pub struct Endpoints {
    /// The gateway (ingest) base URL.
    #[arg(
        long,
        global = true,
        env = "ECG_INGEST_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub ingest: String,
    /// The query API base URL (also issues tokens).
    #[arg(
        long,
        global = true,
        env = "ECG_QUERY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub query: String,
    /// Directory of the cached token (default: $XDG_CONFIG_HOME/ecgctl or
    /// ~/.config/ecgctl).
    #[arg(long, global = true, env = "ECGCTL_HOME")]
    pub home: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Get a token with client credentials and cache it for the other commands.
    Login(Login),
    /// Upload a WFDB record (.hea + .dat, formats 212 and 16), an EDF/EDF+
    /// file or a CSV file, streamed; prints the ECG's id.
    Upload(Upload),
    /// An ECG's status (JSON).
    Status { id: Uuid },
    /// An ECG's insights: heart rate, and per lead samples, zero crossings,
    /// beats, heart rate, SDNN and RMSSD.
    Insights {
        id: Uuid,
        #[arg(long, value_enum, default_value = "auto")]
        format: Format,
    },
    /// Follow an ECG until it is complete or failed, then print its insights.
    Watch {
        id: Uuid,
        /// Milliseconds between polls.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        #[arg(long, value_enum, default_value = "auto")]
        format: Format,
    },
    /// An ECG's beats (R peaks) in one lead: sample index, time and RR
    /// interval; or, with --export, a WFDB annotation file of them.
    Beats(Beats),
    /// Scores an ECG's beats against reference annotations, beat by beat
    /// as WFDB's bxb does (ANSI/AAMI EC57: 150 ms match window).
    Score(Score),
    /// Write an ECG out as a FHIR Observation (JSON) or a WFDB record
    /// (.hea, .dat and beat annotations), exactly as stored.
    Export(Export),
}

/// The formats `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// An HL7 FHIR R4 Observation with SampledData; a Bundle of them when
    /// the recording spans several pages.
    Fhir,
    /// A PhysioNet WFDB record, unpacked into a directory.
    Wfdb,
}

#[derive(Debug, Args)]
pub struct Export {
    /// The ECG's id.
    pub id: Uuid,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// FHIR: the file (default `<id>.fhir.json`); WFDB: the directory
    /// (default `.`).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// WFDB: the record's name (default `ecg_<id as 32 hex digits>`).
    #[arg(long)]
    pub record: Option<String>,
    /// Only samples at or after this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    pub from: Option<OffsetDateTime>,
    /// Only samples before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    pub to: Option<OffsetDateTime>,
}

/// How a command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text on a terminal, JSON when stdout is a pipe or a file (so scripts
    /// get what they always got).
    Auto,
    /// For people: aligned columns.
    Text,
    /// Pretty-printed JSON (`insights`: the API's own).
    Json,
}

impl Format {
    /// Whether to print text: `Auto` asks whether stdout is a terminal.
    pub fn is_text(self) -> bool {
        match self {
            Format::Auto => std::io::IsTerminal::is_terminal(&std::io::stdout()),
            Format::Text => true,
            Format::Json => false,
        }
    }
}

#[derive(Debug, Args)]
pub struct Beats {
    /// The ECG's id.
    pub id: Uuid,
    /// The lead (default: the ECG's first).
    #[arg(long)]
    pub lead: Option<String>,
    /// Only beats at or after this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    pub from: Option<OffsetDateTime>,
    /// Only beats before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    pub to: Option<OffsetDateTime>,
    /// Write the beats to FILE as WFDB annotations (MIT format, every beat
    /// `N`, sample 0 = the ECG's first sample) instead of printing them:
    /// name it RECORD.ANNOTATOR (`100.qrs`) for PhysioNet's tools (`rdann
    /// -r 100 -a qrs`, `bxb -r 100 -a atr qrs`).
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct Score {
    /// The ECG's id.
    pub id: Uuid,
    /// Reference annotations: a WFDB annotation file in MIT format (such as
    /// a PhysioNet record's `.atr`). Only its beat annotations are scored.
    #[arg(long, value_name = "FILE")]
    pub reference: PathBuf,
    /// The lead whose beats are scored (default: the ECG's first).
    #[arg(long)]
    pub lead: Option<String>,
    /// Score from 5 minutes into the record, as bxb does by default (EC57
    /// leaves the first 5 minutes to the detector's learning). The default.
    #[arg(long = "from-5min", conflicts_with = "whole")]
    pub from_5min: bool,
    /// Score the whole record, from its first sample.
    #[arg(long)]
    pub whole: bool,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: Format,
}

fn rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("{e}; expected RFC 3339 such as 2026-05-01T09:00:00Z"))
}

#[derive(Debug, Args)]
pub struct Login {
    #[arg(long, env = "ECGCTL_CLIENT_ID")]
    pub client_id: String,
    /// The client secret; prefer the environment variable to the command line.
    #[arg(long, env = "ECGCTL_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: String,
}

/// A file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// From the extension: .hea/.dat WFDB, .edf EDF, .csv CSV.
    Auto,
    Wfdb,
    Edf,
    Csv,
}

#[derive(Debug, Args)]
pub struct Upload {
    /// The file: a WFDB header (.hea, its .dat beside it, or the record
    /// name), an EDF/EDF+ file, or CSV.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FileFormat,
    /// The device id recorded with the ECG (default: the file's name).
    #[arg(long)]
    pub device: Option<String>,
    /// Upload only these leads, in this order (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub leads: Vec<String>,
    /// CSV only: samples per second per lead.
    #[arg(long)]
    pub rate: Option<f64>,
    /// CSV only: unit of the samples (mV or uV).
    #[arg(long, default_value = "mV")]
    pub units: String,
    /// Wait until the ECG is processed and print its insights (text on a
    /// terminal, JSON otherwise, as `insights` does).
    #[arg(long)]
    pub wait: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_commands_are_well_formed_and_score_takes_one_period() {
        Cli::command().debug_assert();
        let id = Uuid::nil().to_string();
        let score = |extra: &[&str]| {
            let mut a = vec!["ecgctl", "score", &id, "--reference", "100.atr"];
            a.extend(extra);
            Cli::try_parse_from(a)
        };
        assert!(score(&["--whole"]).is_ok());
        assert!(score(&["--from-5min"]).is_ok());
        assert!(score(&["--from-5min", "--whole"]).is_err());
        let beats = Cli::try_parse_from(["ecgctl", "beats", &id, "--from", "yesterday"]);
        assert!(beats.is_err(), "--from is RFC 3339");
    }
}

//! The commands. Every option can also come from the environment
//! (`ECG_INGEST_URL`, `ECG_QUERY_URL`, `ECGCTL_HOME`, `ECGCTL_CLIENT_ID`,
//! `ECGCTL_CLIENT_SECRET`), so scripts need not repeat them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "ecgctl",
    version,
    about = "Upload ECG files to ecg-stream and follow their insights"
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
    /// An ECG's insights (JSON).
    Insights { id: Uuid },
    /// Follow an ECG until it is complete or failed, then print its insights.
    Watch {
        id: Uuid,
        /// Milliseconds between polls.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
    },
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
    /// Wait until the ECG is processed and print its insights.
    #[arg(long)]
    pub wait: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

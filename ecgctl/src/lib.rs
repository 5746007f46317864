//! `ecgctl`, the command-line client of ecg-stream.
//!
//! Modules:
//! - [`cli`]: the commands and their options (clap).
//! - [`session`]: `login`, and the token cached on disk for the other
//!   commands.
//! - [`source`]: which file format a path is, and its reader.
//! - [`upload`]: a file streamed to `PUT /v1/ecgs/{id}/signal` as CSV of
//!   exact ADC counts, with a progress bar.
//! - [`follow`]: `status`, `insights` and `watch`.
//! - [`beats`]: `beats`, an ECG's beats listed or exported as a WFDB
//!   annotation file.
//! - [`score`]: `score`, an ECG's beats compared beat by beat with
//!   reference annotations, as WFDB's `bxb`.
//! - [`export`]: `export`, an ECG as a FHIR Observation or a WFDB record.
//! - [`report`]: text for people (aligned tables, the insights).

pub mod beats;
pub mod cli;
pub mod export;
pub mod follow;
pub mod report;
pub mod score;
pub mod session;
pub mod source;
pub mod upload;

pub use cli::Cli;

use cli::Command;

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    match &cli.command {
        Command::Login(login) => session::login(&http, &cli.endpoints, login).await,
        Command::Upload(args) => {
            let api = session::api(&http, &cli.endpoints)?;
            upload::upload(&api, args).await
        }
        Command::Status { id } => follow::status(&session::api(&http, &cli.endpoints)?, *id).await,
        Command::Insights { id, format } => {
            follow::insights(&session::api(&http, &cli.endpoints)?, *id, *format).await
        }
        Command::Watch {
            id,
            interval_ms,
            format,
        } => {
            let api = session::api(&http, &cli.endpoints)?;
            let interval = std::time::Duration::from_millis(*interval_ms);
            follow::watch(&api, *id, interval, *format).await
        }
        Command::Beats(args) => beats::beats(&session::api(&http, &cli.endpoints)?, args).await,
        Command::Export(args) => export::export(&session::api(&http, &cli.endpoints)?, args).await,
        Command::Score(args) => {
            // The reference is read first: a wrong path fails before any
            // request.
            let reference = score::Reference::read(&args.reference)?;
            score::score(&session::api(&http, &cli.endpoints)?, args, &reference).await
        }
    }
}

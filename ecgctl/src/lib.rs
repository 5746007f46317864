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

pub mod cli;
pub mod follow;
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
        Command::Insights { id } => {
            follow::insights(&session::api(&http, &cli.endpoints)?, *id).await
        }
        Command::Watch { id, interval_ms } => {
            let api = session::api(&http, &cli.endpoints)?;
            follow::watch(&api, *id, std::time::Duration::from_millis(*interval_ms)).await
        }
    }
}

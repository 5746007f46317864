use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = ecgctl::Cli::parse();
    match ecgctl::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ecgctl: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

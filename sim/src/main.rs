use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = ecg_sim::Config::parse();
    match ecg_sim::run(config).await {
        Ok(report) if report.passed() => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::from(2),
        Err(e) => {
            eprintln!("ecg-sim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

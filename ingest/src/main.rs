use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ecg_runtime::init_tracing();
    let config: ecg_ingest::Config =
        ecg_runtime::load_config("ingest.toml").context("loading configuration")?;
    tracing::info!(?config, "starting ingest");
    ecg_ingest::run(config, ecg_runtime::shutdown_on_signal()).await
}

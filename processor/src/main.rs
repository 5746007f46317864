use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ecg_runtime::init_tracing();
    let config: ecg_processor::Config =
        ecg_runtime::load_config("processor.toml").context("loading configuration")?;
    tracing::info!(?config, "starting processor");
    ecg_processor::run(config, ecg_runtime::shutdown_on_signal()).await
}

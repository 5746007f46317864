use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ecg_runtime::init_tracing();
    let config: ecg_query_api::Config =
        ecg_runtime::load_config("query-api.toml").context("loading configuration")?;
    tracing::info!(?config, "starting query-api");
    ecg_query_api::run(config, ecg_runtime::shutdown_on_signal()).await
}

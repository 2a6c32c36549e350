//! `adi serve`: runs a member's node until SIGINT or SIGTERM.

use std::path::PathBuf;

use adi_node::{Node, NodeConfig};
use anyhow::anyhow;

use super::{init_logging, LogFormat, StopSignal};

/// Runs the node that `config` describes, logging in `log_format`.
pub async fn serve(config: PathBuf, log_format: LogFormat) -> anyhow::Result<()> {
    init_logging("info", log_format);
    tracing::info!(version = super::VERSION, "adi serve starting");
    let mut config = NodeConfig::load(&config).map_err(|e| anyhow!("{e}"))?;
    // Previews of PDF files are drawn by this same program, in a process of its own.
    config.previewer = Some(adi_node::preview::Previewer::this_program()?);
    let stop = StopSignal::listen()?;
    if let Some(pair) = config.pair.clone() {
        return adi_node::pair::run(config, pair, stop.wait()).await;
    }
    let node = Node::start(config).await?;
    out!("node {} ready: API http://{}", node.state.member, node.api_addr);
    stop.wait().await;
    node.stop().await;
    Ok(())
}

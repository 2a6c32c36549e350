//! A TCP relay in front of one federation endpoint that can be cut (every connection dropped, new
//! ones refused) and healed: a severed link between two real nodes, for `adi bench` and the
//! process-level tests. A node is pointed at the relay by [`reroute`] before it starts.

use std::path::Path;

use anyhow::{anyhow, Context};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A relay on a loopback port, forwarding to one target while it is up.
pub struct Severable {
    /// Where nodes connect instead of the target.
    pub addr: String,
    up: watch::Sender<bool>,
}

impl Severable {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: String) -> anyhow::Result<Severable> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let (up, watch) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                if !*watch.borrow() {
                    continue;
                }
                let _ = inbound.set_nodelay(true);
                let (target, mut watch) = (target.clone(), watch.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                    let _ = outbound.set_nodelay(true);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(Severable { addr, up })
    }

    /// Drops every connection and refuses new ones until [`Severable::heal`].
    pub fn cut(&self) {
        let _ = self.up.send(false);
    }

    pub fn heal(&self) {
        let _ = self.up.send(true);
    }
}

/// The roster file a node's config names.
fn roster_path(config: &Path) -> anyhow::Result<std::path::PathBuf> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let file: crate::config::ConfigFile =
        toml::from_str(&text).map_err(|e| anyhow!("{}: not a valid config: {e}", config.display()))?;
    Ok(config.parent().unwrap_or(Path::new(".")).join(file.roster))
}

/// The first federation endpoint of `member` in the roster of the node configured by `config`.
pub fn endpoint_of(config: &Path, member: &str) -> anyhow::Result<String> {
    let path = roster_path(config)?;
    let roster = adi_wire::files::RosterFile::from_toml(&std::fs::read_to_string(&path)?)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let entry = roster.members.iter().find(|m| m.code == member).ok_or_else(|| anyhow!("no member {member}"))?;
    entry.endpoints.first().cloned().ok_or_else(|| anyhow!("{member} has no endpoint"))
}

/// Points every endpoint of `member` in the roster of the node configured by `config` at `addr`
/// (each node has its own copy of the roster).
pub fn reroute(config: &Path, member: &str, addr: &str) -> anyhow::Result<()> {
    let path = roster_path(config)?;
    let mut roster = adi_wire::files::RosterFile::from_toml(&std::fs::read_to_string(&path)?)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let entry = roster.members.iter_mut().find(|m| m.code == member).ok_or_else(|| anyhow!("no member {member}"))?;
    entry.endpoints = vec![addr.to_string()];
    std::fs::write(&path, roster.to_toml())?;
    Ok(())
}

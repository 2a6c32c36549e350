//! `adi backup` and `adi restore`: a copy of a node's store, taken while the node runs, and the
//! store put back from one on a machine whose node is stopped (a new one, after the old was lost).
//!
//! The embedded store is copied with SQLite's `VACUUM INTO` (one consistent read transaction); a
//! store on PostgreSQL with `pg_dump` and `pg_restore`, PostgreSQL's own tools. Either way the copy
//! holds the sealed contents only: the node's master key is not in it and is kept apart.
//!
//! A restored store is marked, and the node checks it against its peers at its next start
//! (`adi_node::fed::restore`): it starts only if the store holds everything its peers hold of its
//! lines.

use std::path::{Path, PathBuf};
use std::process::Command;

use adi_node::config::PostgresStore;
use adi_node::NodeConfig;
use anyhow::{anyhow, bail, Context};

fn load(config: &Path) -> anyhow::Result<NodeConfig> {
    NodeConfig::load(config).map_err(|e| anyhow!("{e}"))
}

/// Runs one of PostgreSQL's tools against the store's database, its password (if the
/// configuration gives one) in the tool's environment rather than on its command line.
fn pg_tool(tool: &str, args: &[&str], pg: &PostgresStore) -> anyhow::Result<()> {
    let mut command = Command::new(tool);
    command.args(args).arg("--dbname").arg(&pg.url);
    if let Some(password) = &pg.password {
        command.env("PGPASSWORD", password);
    }
    let status = command.status().with_context(|| format!("cannot run {tool} (Debian's postgresql-client has it)"))?;
    if !status.success() {
        bail!("{tool} failed ({status})");
    }
    Ok(())
}

/// Writes a copy of the node's store to `out`, a new file.
pub fn backup(config: PathBuf, out: PathBuf) -> anyhow::Result<()> {
    let config = load(&config)?;
    if out.exists() {
        bail!("{} exists; a backup is written to a new file", out.display());
    }
    out!("[1/2] copying {} to {}", config.store_name(), out.display());
    match &config.postgres {
        None => {
            let store = adi_node::state::open_store(&config)?;
            store.backup_to(&out)?;
        }
        Some(pg) => {
            let file = out.to_str().ok_or_else(|| anyhow!("{} is not UTF-8", out.display()))?;
            pg_tool("pg_dump", &["--format=custom", "--no-owner", "--file", file], pg)?;
        }
    }
    adi_node::files::make_private(&out).with_context(|| format!("narrowing {} to mode 0600", out.display()))?;
    let bytes = std::fs::metadata(&out)?.len();
    out!("[2/2] done: {} ({bytes} bytes), readable by its owner only", out.display());
    out!("the copy holds sealed contents; the node's master key is not in it and must be kept apart");
    Ok(())
}

/// Puts the node's store back from the backup `from`. The node must be stopped. An embedded store
/// already there is moved aside with `replace` (and refused without); a store on PostgreSQL is
/// restored into an empty database only.
pub fn restore(config: PathBuf, from: PathBuf, replace: bool) -> anyhow::Result<()> {
    let config = load(&config)?;
    if !from.is_file() {
        bail!("{} is not a backup file", from.display());
    }
    out!("[1/3] putting {} back into {}", from.display(), config.store_name());
    match &config.postgres {
        None => {
            let database = &config.database;
            if database.exists() {
                if !replace {
                    bail!("{} exists; stop the node, and give --replace to move it aside", database.display());
                }
                let aside = format!("{}.replaced-{}", database.display(), adi_node::clock::now_ms());
                for suffix in ["", "-wal", "-shm"] {
                    let (from, to) = (format!("{}{suffix}", database.display()), format!("{aside}{suffix}"));
                    if Path::new(&from).exists() {
                        std::fs::rename(&from, &to).with_context(|| format!("moving {from} aside"))?;
                    }
                }
                out!("      the store that was there is now {aside}");
            }
            std::fs::copy(&from, database).with_context(|| format!("copying to {}", database.display()))?;
            adi_node::files::make_private(database)?;
        }
        Some(pg) => {
            if adi_store::postgres_admin::table_count(&pg.url)? > 0 {
                bail!("{} holds tables already; restore into an empty database", config.store_name());
            }
            let file = from.to_str().ok_or_else(|| anyhow!("{} is not UTF-8", from.display()))?;
            pg_tool("pg_restore", &["--no-owner", "--exit-on-error", file], pg)?;
        }
    }
    out!("[2/3] opening it under this node's master key");
    let store = adi_node::state::open_store(&config)?;
    adi_store::Store::load(&store, &config.member)
        .map_err(|e| anyhow!("the restored store does not open under this node's master key: {e}"))?;
    store.mark_restored(adi_node::clock::now_ms())?;
    out!("[3/3] restored. At its next start the node asks every peer what it holds of their lines, and");
    out!("      starts only if the store holds all of it (a backup of a stopped node, or of a quiet one)");
    Ok(())
}

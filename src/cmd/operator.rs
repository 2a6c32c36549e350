//! `adi operator add`: adds an operator to a node's store (or replaces its token), with a console
//! password if one is given on standard input.

use std::path::PathBuf;

use adi_node::setup;
use adi_node::NodeConfig;
use anyhow::anyhow;

/// Adds the operator and prints its API token, once.
pub fn add(config: PathBuf, name: String, role: String, password_stdin: bool) -> anyhow::Result<()> {
    let config = NodeConfig::load(&config).map_err(|e| anyhow!("{e}"))?;
    let store = adi_node::state::open_store(&config)?;
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Some(line.trim_end_matches(['\n', '\r']).to_string())
    } else {
        None
    };
    if let Some(p) = &password {
        setup::check_password(p)?;
    }
    let token = setup::add_operator(&store, &name, &role)?;
    if let Some(p) = &password {
        setup::set_password(&store, &name, p)?;
    }
    let console = if password.is_some() { "; the console password is set" } else { "" };
    eprintln!("operator {name} ({role}) added{console}; the API token is shown once:");
    out!("{token}");
    Ok(())
}

//! `adi operator`: the operators of a node's store: add (or change the role and token of) one,
//! list them, remove one, give one a new token or a new console password. Every change to an
//! operator's credentials or role ends its console sessions at once, and a running node sees it
//! on the operator's next request.

use std::path::{Path, PathBuf};

use adi_node::setup;
use adi_node::NodeConfig;
use adi_store::Store;
use anyhow::{anyhow, bail};

use crate::cmd::{printable, utc};

fn open(config: &Path) -> anyhow::Result<Box<dyn Store>> {
    let config = NodeConfig::load(config).map_err(|e| anyhow!("{e}"))?;
    Ok(Box::new(adi_node::state::open_store(&config)?))
}

/// `0` days: a token accepted until it is replaced.
fn days(token_days: u64) -> Option<u64> {
    (token_days > 0).then_some(token_days)
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    setup::check_password(&password)?;
    Ok(password)
}

/// Adds the operator and prints its API token, once.
pub fn add(config: PathBuf, name: String, role: String, password_stdin: bool, token_days: u64) -> anyhow::Result<()> {
    let store = open(&config)?;
    let password = if password_stdin { Some(read_password()?) } else { None };
    let token = setup::add_operator_for(&*store, &name, &role, days(token_days))?;
    if let Some(p) = &password {
        setup::set_password(&*store, &name, p)?;
    }
    let console = if password.is_some() { "; the console password is set" } else { "" };
    eprintln!("operator {name} ({role}) added{console}; {}; the API token is shown once:", expiry(token_days));
    out!("{token}");
    Ok(())
}

fn expiry(token_days: u64) -> String {
    match days(token_days) {
        Some(d) => format!("the token expires in {d} days"),
        None => "the token does not expire".into(),
    }
}

/// Lists the operators.
pub fn list(config: PathBuf) -> anyhow::Result<()> {
    let store = open(&config)?;
    let operators = store.operators()?;
    if operators.is_empty() {
        out!("no operators");
    }
    for r in operators {
        let expires = r.token_expires_ms.map_or("never".to_string(), utc);
        let password = if r.has_password { "console password set" } else { "token only" };
        out!(
            "{:<24} {:<10} token expires {expires}; {password}; {} session(s)",
            printable(&r.operator.name),
            r.operator.role.as_str(),
            r.sessions
        );
    }
    Ok(())
}

/// Removes an operator.
pub fn remove(config: PathBuf, name: String) -> anyhow::Result<()> {
    let store = open(&config)?;
    if !store.remove_operator(&name)? {
        bail!("no operator {name}");
    }
    out!("operator {name} removed; its token no longer works and its console sessions have ended");
    Ok(())
}

/// Gives an operator a new token, keeping its role.
pub fn token(config: PathBuf, name: String, token_days: u64) -> anyhow::Result<()> {
    let store = open(&config)?;
    let Some(record) = store.operators()?.into_iter().find(|r| r.operator.name == name) else {
        bail!("no operator {name}");
    };
    let token = setup::add_operator_for(&*store, &name, record.operator.role.as_str(), days(token_days))?;
    eprintln!("operator {name}: a new token; the old one no longer works; {}; shown once:", expiry(token_days));
    out!("{token}");
    Ok(())
}

/// Sets an operator's console password from standard input.
pub fn password(config: PathBuf, name: String) -> anyhow::Result<()> {
    let store = open(&config)?;
    let password = read_password()?;
    setup::set_password(&*store, &name, &password)?;
    out!("operator {name}: the console password is set; its console sessions have ended");
    Ok(())
}

//! `adi check-config`: a node's configuration and every file it names, checked without starting
//! anything: the configuration as `adi serve` loads it, and what loading leaves to the node's
//! start (each named file there and readable, the TLS certificate and key, the database's
//! folder).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use adi_node::config::{ConfigFile, MASTER_KEY_ENV};
use adi_node::NodeConfig;
use anyhow::{anyhow, bail};

/// Checks the configuration `config`; prints `ok` and what it describes, or fails naming the file
/// and, where it can, the field or line at fault.
pub fn check_config(config: &Path) -> anyhow::Result<()> {
    // The file as written: its syntax and its keys (an unknown one is named, with its line).
    let file = ConfigFile::read(config).map_err(|e| anyhow!("{e}"))?;
    check_named_files(config, &file)?;
    // Everything `adi serve` checks before it opens the store: the roster and this member in it,
    // the keys, the addresses, the store's settings and the limits.
    let loaded = NodeConfig::load(config).map_err(|e| anyhow!("{e}"))?;
    let (cert, key) = adi_node::tls::load_identity(&loaded.tls_cert, &loaded.tls_key).map_err(|e| {
        // The error starts with the file that did not load.
        let text = format!("{e:#}");
        let (field, what) = match text.starts_with(&format!("{}: ", loaded.tls_key.display())) {
            true => ("tls_key", "a PEM private key"),
            false => ("tls_cert", "a PEM certificate"),
        };
        field_error(config, field, &format!("{text} (expected {what})"))
    })?;
    let pin = adi_node::tls::spki_pin(&cert);
    adi_node::tls::Presented::new(cert, &key).map_err(|e| field_error(config, "tls_key", &format!("{e:#}")))?;
    // The keys of a rotation under way, kept beside the key files until the node moves to them.
    loaded.key_files().next().map_err(|e| anyhow!("{e}"))?;
    if loaded.postgres.is_none() {
        check_database(config, &loaded.database)?;
    }
    for warning in warnings(&loaded, pin) {
        eprintln!("warning: {warning}");
    }
    out!("ok: {}", summary(&loaded));
    Ok(())
}

/// An error about a field of the configuration file.
fn field_error(config: &Path, field: &str, message: &str) -> anyhow::Error {
    anyhow!("{}: field `{field}`: {message}", config.display())
}

/// Checks that each file the configuration names is a file this user can read, naming the field
/// that names one that is not.
fn check_named_files(config: &Path, file: &ConfigFile) -> anyhow::Result<()> {
    let mut named = vec![
        ("roster", Some(&file.roster)),
        ("roster_versions", file.roster_versions.as_ref()),
        ("signing_key", Some(&file.signing_key)),
        ("tls_cert", Some(&file.tls_cert)),
        ("tls_key", Some(&file.tls_key)),
        ("store.password_file", file.store.as_ref().and_then(|s| s.password_file.as_ref())),
    ];
    // The node reads the master key from the environment when it is there, and the file only then.
    if std::env::var_os(MASTER_KEY_ENV).is_none() {
        named.push(("master_key", file.master_key.as_ref()));
    }
    let dir = config.parent().unwrap_or(Path::new("."));
    for (field, name) in named {
        let Some(name) = name else { continue };
        let path = dir.join(name);
        match std::fs::File::open(&path).and_then(|f| f.metadata()) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(field_error(config, field, &format!("{} is not a file", path.display()))),
            Err(e) => return Err(field_error(config, field, &format!("cannot read {}: {e}", path.display()))),
        }
    }
    Ok(())
}

/// Checks that the embedded store's folder is there and writable by this user, and its file, if
/// there already, readable and writable (the node makes it at its first start).
fn check_database(config: &Path, database: &Path) -> anyhow::Result<()> {
    use rustix::fs::{access, Access};
    let folder = database.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        bail!("{}: field `database`: the folder {} is not there", config.display(), folder.display());
    }
    // SQLite writes its journal beside the database: the folder must take new files.
    access(folder, Access::WRITE_OK | Access::EXEC_OK).map_err(|e| {
        field_error(config, "database", &format!("cannot write in the folder {}: {e}", folder.display()))
    })?;
    match std::fs::metadata(database) {
        Ok(meta) if !meta.is_file() => {
            Err(field_error(config, "database", &format!("{} is not a file", database.display())))
        }
        Ok(_) => access(database, Access::READ_OK | Access::WRITE_OK).map_err(|e| {
            field_error(config, "database", &format!("cannot read and write {}: {e}", database.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(field_error(config, "database", &format!("cannot read {}: {e}", database.display()))),
    }
}

/// What a node would start with but an administrator should know: private key files others can
/// read, and keys that are not the ones the configuration's roster gives the member.
fn warnings(config: &NodeConfig, tls_pin: Option<[u8; 32]>) -> Vec<String> {
    let mut warnings = Vec::new();
    for file in [&config.signing_key_file, &config.tls_key] {
        let open = std::fs::metadata(file).is_ok_and(|m| m.permissions().mode() & 0o077 != 0);
        if open {
            warnings.push(format!("{} is a private key that others can read: chmod 0600 it", file.display()));
        }
    }
    // After a rotation the roster in force, kept in the node's store, gives the member keys that
    // the configuration's roster does not: the node checks its keys against that one as it starts.
    if let Some(me) = config.roster.member(&config.member) {
        if me.signing_key != config.signing_key.verifying_key() {
            warnings.push(format!(
                "{} is not the signing key the configuration's roster gives {}; the node starts only if a \
                 rotation put it in force",
                config.signing_key_file.display(),
                config.member
            ));
        }
        if tls_pin != Some(me.tls_pin) {
            warnings.push(format!(
                "{} is not the TLS certificate the configuration's roster pins for {}; the node starts only if \
                 a rotation put it in force",
                config.tls_cert.display(),
                config.member
            ));
        }
    }
    warnings
}

/// One line: the member, the listeners, the store and the peers.
fn summary(config: &NodeConfig) -> String {
    let me = &config.member;
    let name = config.roster.member(me).map(|m| format!(" ({})", m.name)).unwrap_or_default();
    let scheme = if config.api_tls { "https" } else { "http" };
    let mut listeners = vec![format!("API {scheme}://{}", config.api_listen)];
    listeners.extend(config.federation_listen.iter().map(|a| format!("federation {a}")));
    if let Some(metrics) = config.metrics_listen {
        listeners.push(format!("metrics {metrics}"));
    }
    let store = match &config.postgres {
        Some(_) => format!("postgres {}", config.store_name()),
        None => format!("sqlite {}", config.store_name()),
    };
    let pair = config.pair.as_ref().map(|p| format!("; pair node {}", p.name)).unwrap_or_default();
    let peers: Vec<_> = config.roster.members().filter(|m| &m.code != me).collect();
    let suspended = peers.iter().filter(|m| config.roster.is_suspended(&m.code)).count();
    let suspended = if suspended > 0 { format!(", {suspended} suspended") } else { String::new() };
    let plural = if peers.len() == 1 { "" } else { "s" };
    format!(
        "{}: member {me}{name}; listeners {}; store {store}{pair}; {} peer{plural}{suspended} in the roster",
        config.path.display(),
        listeners.join(", "),
        peers.len(),
    )
}

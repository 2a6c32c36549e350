//! `adi`: the one binary. It parses the command line and calls into the crates; the logic lives
//! there. Each subcommand runs in its module of `cmd` (`adi bench` in `bench`).

#![forbid(unsafe_code)]

mod bench;
mod cmd;

use std::path::PathBuf;

use adi_node::client::Client;
use adi_node::setup::InitOptions;
use clap::{Args, CommandFactory, Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(name = "adi", version = cmd::VERSION, about = "ADI: the Direct Communications Infrastructure of the ADMM-Plus")]
struct Cli {
    /// How logs are written to standard error: text, for people, or json, one object a line (its
    /// timestamp, level, target and fields), for log shippers.
    #[arg(long, global = true, value_enum, env = "ADI_LOG_FORMAT", default_value_t = cmd::LogFormat::Text)]
    log_format: cmd::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a member's signing key, node TLS certificate, config and public card.
    Init {
        #[arg(long)]
        member: String,
        #[arg(long)]
        dir: PathBuf,
        /// The member's name; known members' names come from the shipped data.
        #[arg(long)]
        name: Option<String>,
        /// ASEAN, PLUS or OBSERVER; known members' communities come from the shipped data.
        #[arg(long)]
        community: Option<String>,
        /// Federation endpoint published on the card (repeat for more, in order of preference).
        #[arg(long = "endpoint", default_value = "127.0.0.1:7100")]
        endpoints: Vec<String>,
        /// Federation listen address (repeat for more).
        #[arg(long = "federation-listen", default_value = "127.0.0.1:7100")]
        federation_listen: Vec<String>,
        #[arg(long, default_value = "127.0.0.1:7300")]
        api_listen: String,
        /// Keep the node's store on this PostgreSQL database (postgres://user@host:port/database)
        /// instead of the embedded SQLite file; give the password in the config's
        /// `[store] password_file`.
        #[arg(long)]
        store: Option<String>,
    },
    /// Assemble a roster from member cards (`--out FILE CARD...`); or, on a running network,
    /// show it, propose and sign amendments, and join it.
    #[command(args_conflicts_with_subcommands = true)]
    Roster {
        #[command(subcommand)]
        command: Option<RosterCommand>,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "ADI roster")]
        name: String,
        cards: Vec<PathBuf>,
    },
    /// Roster versions: write the first, propose an amendment, sign one, check a chain.
    Amendment {
        #[command(subcommand)]
        command: AmendmentCommand,
    },
    /// Check a node's configuration and the files it names (roster, keys, certificate, database
    /// folder) without starting anything; print "ok" and what it describes, or what is wrong.
    CheckConfig {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Draw one page of a PDF read from standard input, bounded; run by the node for previews.
    #[command(hide = true)]
    PreviewPdf(cmd::preview::PreviewArgs),
    /// Run a member's node.
    Serve {
        /// The node's configuration file (`adi init` writes one).
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage operators.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Write a copy of the node's store to a new file, while the node runs (SQLite's VACUUM INTO,
    /// or pg_dump for a store on PostgreSQL); the master key is not in it.
    Backup {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Put the node's store back from a backup, the node stopped; at its next start the node
    /// checks it against every peer and starts only if it holds all they hold of its lines.
    Restore {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        from: PathBuf,
        /// Move an embedded store that is there aside instead of refusing.
        #[arg(long)]
        replace: bool,
    },
    /// List lines.
    Lines(ClientArgs),
    /// Open a line (a direct line of two members or a conference).
    NewLine {
        #[command(flatten)]
        client: ClientArgs,
        /// Member codes, comma-separated, this node's member among them.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        /// ADMM or ADMM-Plus.
        #[arg(long)]
        scope: String,
        #[arg(long)]
        title: Option<String>,
    },
    /// Send a message on a line.
    Send {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        line: String,
        /// FLASH, IMMEDIATE, PRIORITY or ROUTINE.
        #[arg(long, default_value = "ROUTINE")]
        precedence: String,
        /// OPERATIONAL, SERVICE or TEST.
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        caveat: Option<String>,
        /// Required for free text; a report's subject defaults to its one-line summary.
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        body: Option<String>,
        #[arg(long)]
        ack_required: Option<bool>,
        /// Send a structured report of this kind (encounter-at-sea, air-encounter,
        /// disaster-relief, military-activity, call-request, call-answer), read from --file.
        #[arg(long, requires = "file")]
        kind: Option<String>,
        /// The report, as JSON (docs/examples/ has one of every kind).
        #[arg(long, requires = "kind")]
        file: Option<PathBuf>,
        /// An Experts' Working Group tag, such as maritime-security.
        #[arg(long)]
        ewg: Option<String>,
        /// A file to attach (repeat for several): uploaded first, then sent in chunks after the
        /// message, encrypted like it. Its media type is taken from its extension.
        #[arg(long)]
        attach: Vec<PathBuf>,
    },
    /// A file attached to a message.
    Attachment {
        #[command(subcommand)]
        command: AttachmentCommand,
    },
    /// Closest point of approach of two units and the COLREGs situation, as a suggestion for the
    /// reporting officer to confirm. Computed here; no node is asked.
    Cpa {
        /// The reporting unit: LAT,LON,COURSE,SPEED (degrees, degrees true, knots).
        #[arg(long, allow_hyphen_values = true, required_unless_present = "file")]
        own: Option<String>,
        /// The other unit: LAT,LON,COURSE,SPEED.
        #[arg(long, allow_hyphen_values = true, required_unless_present = "file")]
        other: Option<String>,
        /// Or an encounter-at-sea report: its reporting unit against each other unit.
        #[arg(long, conflicts_with_all = ["own", "other"])]
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Messages from other members, most urgent first.
    Inbox {
        #[command(flatten)]
        client: ClientArgs,
        /// How many messages to show, the most urgent; a line on standard error says when more
        /// remain.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One message with each recipient's state.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Peer links and their backlogs.
    Peers(ClientArgs),
    /// Mark a message from another member as seen.
    Seen {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Acknowledge a message from another member.
    Ack {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Decline a message from another member, saying why.
    Decline {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        /// Why the message is declined; the sender sees it.
        #[arg(long)]
        reason: String,
    },
    /// Messages held for a principal's release.
    Drafts(ClientArgs),
    /// Release a held message and send it (principals only).
    Release {
        #[command(flatten)]
        client: ClientArgs,
        /// The draft's number, as `adi drafts` lists it.
        id: u64,
    },
    /// Open alarms, newest first.
    Alarms {
        #[command(flatten)]
        client: ClientArgs,
        /// Also list cleared alarms.
        #[arg(long)]
        all: bool,
    },
    /// Acknowledge an alarm: record that an operator has taken it in hand.
    AlarmAck {
        #[command(flatten)]
        client: ClientArgs,
        /// The alarm's number, as `adi alarms` lists it.
        id: u64,
    },
    /// Each direct line's link: health from link tests, round trip and backlog.
    Links(ClientArgs),
    /// Follow the node's events as they happen, one line each.
    Watch {
        #[command(flatten)]
        client: ClientArgs,
        /// Start after this event id instead of now (replays what the node still keeps).
        #[arg(long)]
        after: Option<u64>,
        /// Exit after this many events.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Mutual decisions: propose an exact text, concur, decline, show.
    Decision {
        #[command(subcommand)]
        command: DecisionCommand,
    },
    /// Write the operations report of a window (link availability, outages, time to acknowledge,
    /// alarms, traffic) to a file: one self-contained HTML page with its plots, or JSON.
    Report {
        #[command(flatten)]
        client: ClientArgs,
        /// Start of the window: a day (YYYY-MM-DD, from midnight UTC) or milliseconds since
        /// 1970-01-01T00:00Z; default: 30 days before its end.
        #[arg(long, value_parser = cmd::report::parse_time)]
        from: Option<u64>,
        /// End of the window (not included), as `--from`; default: now.
        #[arg(long, value_parser = cmd::report::parse_time)]
        to: Option<u64>,
        /// Where to write it (report.html, or report.json with --json).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a self-contained, offline-verifiable bundle of a line's record.
    Export {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        line: String,
        /// Start of the window: milliseconds since 1970-01-01T00:00Z, by the time this node
        /// accepted each envelope.
        #[arg(long)]
        from: Option<u64>,
        /// End of the window, as `--from`.
        #[arg(long)]
        to: Option<u64>,
        #[arg(long)]
        out: PathBuf,
        /// Once the bundle is written and read back, confirm to the node that it is archived:
        /// the node's retention may then prune the content of the messages it holds once their
        /// class's time is past. Administrators only.
        #[arg(long, conflicts_with = "without_files")]
        archive: bool,
        /// Leave the bytes of attached files out (each file's SHA-256 stays in its signed
        /// message, which `adi verify` still checks).
        #[arg(long)]
        without_files: bool,
    },
    /// Check a bundle offline: every signature, chain link, proof, receipt and checkpoint,
    /// under roster keys anchored outside the bundle.
    Verify {
        file: PathBuf,
        /// The roster to check the bundle's keys against (the anchor), as distributed to the
        /// members.
        #[arg(long, conflicts_with_all = ["config", "roster_sha256", "unanchored"])]
        roster: Option<PathBuf>,
        /// A node's configuration: the roster it runs with, as this establishment received it,
        /// is the anchor.
        #[arg(long, conflicts_with_all = ["roster_sha256", "unanchored"])]
        config: Option<PathBuf>,
        /// The SHA-256 of the roster (hex), as published (`adi roster` prints it): the bundle's
        /// copy of the roster must hash to it.
        #[arg(long, conflicts_with = "unanchored")]
        roster_sha256: Option<String>,
        /// The network's identity, the hash of the roster's first version (`adi roster show`):
        /// the roster chain the bundle carries must start there, and gives the keys.
        #[arg(long, conflicts_with_all = ["roster", "config", "roster_sha256", "unanchored"])]
        network: Option<String>,
        /// Check without an anchor: the bundle is then only shown consistent with itself, and
        /// the command says so.
        #[arg(long)]
        unanchored: bool,
        /// Print the checks, the decisions and the record as JSON.
        #[arg(long)]
        json: bool,
        /// Print only the result and the first failure.
        #[arg(long)]
        quiet: bool,
        /// Also print the text of every structured report in the bundle, each checked against
        /// its signed content.
        #[arg(long)]
        reports: bool,
    },
    /// Build and run a whole local network.
    Demo {
        /// Member codes, comma-separated (default: the 18 members of 2022).
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<String>>,
        /// Folder for the network's state (default: a new folder under the system's temp dir).
        #[arg(long)]
        state: Option<PathBuf>,
        #[arg(long, default_value_t = 7400)]
        base_port: u16,
        /// Only write the state; run each node with `adi serve --config <config>`.
        #[arg(long)]
        init_only: bool,
        /// Do not play the scenario.
        #[arg(long)]
        no_scenario: bool,
        /// Then admit this member into the running network by roster amendment, end to end
        /// (its keys and card, the proposal, every ASEAN signature, its node joining, a FLASH).
        #[arg(long)]
        admit: Option<String>,
    },
    /// Measure latency, throughput, network build, catch-up and resources on real node processes,
    /// each beside the machine's physical floor.
    Bench(bench::BenchArgs),
    /// Print a completion script for a shell (bash, zsh, fish, elvish or powershell), made from
    /// this command line; for bash, `adi completions bash > /etc/bash_completion.d/adi`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages, made from this command line, into a folder: adi.1 and one page a
    /// subcommand (adi-serve.1, adi-roster-show.1, ...).
    Man {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AttachmentCommand {
    /// Save a file attached to a message, once every chunk has arrived and the whole matches
    /// the SHA-256 its message signed.
    Get {
        #[command(flatten)]
        client: ClientArgs,
        /// The message's id.
        message: String,
        /// The file's SHA-256 (as `adi show` lists it).
        sha256: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum DecisionCommand {
    /// Propose a decision on a line (every member of the line is a party unless named).
    Propose {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        line: String,
        /// The exact text.
        #[arg(long)]
        text: String,
        /// Member codes whose concurrence makes it final, comma-separated.
        #[arg(long, value_delimiter = ',')]
        parties: Option<Vec<String>>,
        #[arg(long)]
        deadline_s: Option<u64>,
        /// The decision this version replaces.
        #[arg(long)]
        supersedes: Option<String>,
    },
    /// Concur with a decision's exact text.
    Concur {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Decline a decision, with a reason.
    Decline {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// A decision, its state and each party's answer.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
}

#[derive(Subcommand)]
enum RosterCommand {
    /// The roster in force, its members, and every version from the first.
    Show {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The proposed versions: what each changes, who signed it, what it still lacks.
    Proposals {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Propose an amendment of the roster in force, signed by this member (administrators).
    #[command(group(clap::ArgGroup::new("amendment").required(true)
        .args(["admit", "suspend", "reinstate", "remove", "roster"])))]
    Propose {
        #[command(flatten)]
        client: ClientArgs,
        /// Admit the member of this card (its `adi init` card).
        #[arg(long)]
        admit: Option<PathBuf>,
        /// Suspend a member.
        #[arg(long)]
        suspend: Option<String>,
        /// End a member's suspension.
        #[arg(long)]
        reinstate: Option<String>,
        /// Remove a member.
        #[arg(long)]
        remove: Option<String>,
        /// The whole roster as it would stand (TOML), for any other amendment.
        #[arg(long)]
        roster: Option<PathBuf>,
    },
    /// Sign a proposal with this member's key (administrators).
    Sign {
        #[command(flatten)]
        client: ClientArgs,
        /// The proposal's hash, as `adi roster proposals` shows it.
        hash: String,
    },
    /// Rotate this member's signing and TLS keys (administrators): the node makes new keys, puts
    /// the version giving them in force, and moves to them once every peer holds it.
    Rotate {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Write the versions after the first, for a joining member's node.
    Chain {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Set a new member's node up on the network's roster once a version admits it.
    Join {
        /// The new member's node configuration (from `adi init`).
        #[arg(long)]
        config: PathBuf,
        /// The network's roster file: its first version, as every member holds it.
        #[arg(long)]
        first: PathBuf,
        /// The versions after the first (`adi roster chain`).
        #[arg(long)]
        chain: PathBuf,
        /// The network's identity as given out of band: the first version's hash.
        #[arg(long)]
        network: Option<String>,
    },
}

#[derive(Subcommand)]
enum AmendmentCommand {
    /// Write the first version of a roster; its hash is the network's identity.
    First {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the unsigned version that would follow a chain of versions with an amended roster,
    /// and say what it changes.
    Propose {
        /// The versions so far, first to last.
        #[arg(long = "version", required = true)]
        versions: Vec<PathBuf>,
        /// The roster as the amendment would leave it.
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a proposed version with this establishment's key (its node's configuration), after
    /// checking that it follows the chain.
    Sign {
        /// The versions so far, first to last.
        #[arg(long = "version", required = true)]
        versions: Vec<PathBuf>,
        /// The node whose member and key sign.
        #[arg(long)]
        config: PathBuf,
        /// Sign with this new signing key (PEM) instead: the key the proposal gives the member.
        #[arg(long)]
        new_key: Option<PathBuf>,
        /// The proposed version; the signature is added to it.
        file: PathBuf,
    },
    /// Check a chain of versions, first to last, as every node checks it.
    Check {
        #[arg(required = true)]
        versions: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Add an operator (or give an existing one a new role and token) and print the token once;
    /// any change ends the operator's console sessions.
    Add {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        name: String,
        /// duty, principal, translator, auditor or admin.
        #[arg(long)]
        role: String,
        /// Read the operator's console password from standard input (one line, 12 characters or
        /// more); without it the operator uses the API token only.
        #[arg(long)]
        password_stdin: bool,
        /// Days the API token is accepted (0: until it is replaced).
        #[arg(long, default_value_t = adi_node::setup::OPERATOR_TOKEN_DAYS)]
        token_days: u64,
    },
    /// List the operators: role, token expiry, console password, open sessions.
    List {
        #[arg(long)]
        config: PathBuf,
    },
    /// Remove an operator: its token stops working and its console sessions end at once.
    Remove {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
    /// Give an operator a new API token (the old one stops working, its sessions end) and print
    /// it once.
    Token {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        name: String,
        /// Days the new token is accepted (0: until it is replaced).
        #[arg(long, default_value_t = adi_node::setup::OPERATOR_TOKEN_DAYS)]
        token_days: u64,
    },
    /// Set an operator's console password from standard input; its sessions end.
    Password {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
}

#[derive(Args)]
struct ClientArgs {
    /// The node's API URL; for an active/standby pair, both nodes' URLs separated by a comma
    /// (the command goes to the active one).
    #[arg(long, env = "ADI_URL", default_value = "http://127.0.0.1:7300")]
    url: String,
    /// The operator's token.
    #[arg(long, env = "ADI_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The node's key pin, for https URLs.
    #[arg(long, env = "ADI_PIN")]
    pin: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
}

impl ClientArgs {
    fn client(&self) -> anyhow::Result<Client> {
        if self.token.is_none() {
            anyhow::bail!("an operator token is needed: --token or ADI_TOKEN");
        }
        Client::new(&self.url, self.token.clone(), self.pin.as_deref())
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Drawing a page runs in a process of its own, single-threaded, bounded before it reads.
    if let Command::PreviewPdf(args) = &cli.command {
        return cmd::preview::run(args);
    }
    // Whatever the command writes (a database, keys, a bundle) is its owner's alone.
    adi_node::files::keep_private();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            cmd::print_error(cli.log_format, &format!("cannot start the runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    let log_format = cli.log_format;
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // An error may carry a node's or a peer's words: escaped, like everything printed.
            cmd::print_error(log_format, &format!("{e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the subcommand parsed.
async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init { member, dir, name, community, endpoints, federation_listen, api_listen, store } => {
            cmd::init::init(InitOptions {
                member,
                dir,
                name,
                community,
                endpoints,
                federation_listen,
                api_listen,
                discipline: adi_node::config::DisciplineSection::default(),
                store,
            })
        }
        Command::Roster { command: None, out, name, cards } => {
            let out = out.ok_or_else(|| anyhow::anyhow!("--out is needed to assemble a roster"))?;
            if cards.is_empty() {
                anyhow::bail!("name the member cards to assemble the roster from");
            }
            cmd::init::roster(out, name, cards)
        }
        Command::Roster { command: Some(command), .. } => match command {
            RosterCommand::Show { client } => cmd::roster::show(client).await,
            RosterCommand::Proposals { client } => cmd::roster::proposals(client).await,
            RosterCommand::Propose { client, admit, suspend, reinstate, remove, roster } => {
                cmd::roster::propose(client, cmd::roster::Amend { admit, suspend, reinstate, remove, roster }).await
            }
            RosterCommand::Sign { client, hash } => cmd::roster::sign(client, hash).await,
            RosterCommand::Rotate { client } => cmd::roster::rotate(client).await,
            RosterCommand::Chain { client, out } => cmd::roster::chain(client, out).await,
            RosterCommand::Join { config, first, chain, network } => cmd::roster::join(config, first, chain, network),
        },
        Command::Amendment { command } => match command {
            AmendmentCommand::First { roster, out } => cmd::amendment::first(roster, out),
            AmendmentCommand::Propose { versions, roster, out } => cmd::amendment::propose(versions, roster, out),
            AmendmentCommand::Sign { versions, config, new_key, file } => {
                cmd::amendment::sign(versions, file, config, new_key)
            }
            AmendmentCommand::Check { versions } => cmd::amendment::check(versions),
        },
        Command::CheckConfig { config } => cmd::check_config::check_config(&config),
        Command::Serve { config } => cmd::serve::serve(config, cli.log_format).await,
        // Run by `main` before the runtime starts.
        Command::PreviewPdf(_) => Err(anyhow::anyhow!("preview-pdf runs before the runtime")),
        Command::Backup { config, out } => cmd::backup::backup(config, out),
        Command::Restore { config, from, replace } => cmd::backup::restore(config, from, replace),
        Command::Operator { command } => match command {
            OperatorCommand::Add { config, name, role, password_stdin, token_days } => {
                cmd::operator::add(config, name, role, password_stdin, token_days)
            }
            OperatorCommand::List { config } => cmd::operator::list(config),
            OperatorCommand::Remove { config, name } => cmd::operator::remove(config, name),
            OperatorCommand::Token { config, name, token_days } => cmd::operator::token(config, name, token_days),
            OperatorCommand::Password { config, name } => cmd::operator::password(config, name),
        },
        Command::Lines(args) => cmd::lines::lines(args).await,
        Command::NewLine { client, members, scope, title } => cmd::lines::new_line(client, members, scope, title).await,
        Command::Send {
            client,
            line,
            precedence,
            class,
            caveat,
            subject,
            body,
            ack_required,
            kind,
            file,
            ewg,
            attach,
        } => {
            let draft =
                cmd::send::Draft { precedence, class, caveat, subject, body, ack_required, kind, file, ewg, attach };
            cmd::send::send(client, line, draft).await
        }
        Command::Attachment { command: AttachmentCommand::Get { client, message, sha256, out } } => {
            cmd::send::get_attachment(client, message, sha256, out).await
        }
        Command::Inbox { client, limit } => cmd::messages::inbox(client, limit).await,
        Command::Export { client, line, from, to, out, archive, without_files } => {
            cmd::export::export(client, line, (from, to, without_files), out, archive).await
        }
        Command::Report { client, from, to, out } => {
            let json = client.json;
            cmd::report::report(client, from, to, json, out).await
        }
        Command::Verify { file, roster, config, roster_sha256, network, unanchored, json, quiet, reports } => {
            let anchor = cmd::export::anchor(roster.as_deref(), config.as_deref(), roster_sha256.as_deref())?;
            let network = cmd::export::network(network.as_deref(), config.as_deref())?;
            let shown = cmd::export::Shown { json, quiet, reports };
            cmd::export::verify_bundle(&file, &anchor, network, unanchored, shown)
        }
        Command::Decision { command } => cmd::decision::decision(command).await,
        Command::Cpa { own, other, file, json } => cmd::cpa::cpa(own, other, file, json),
        Command::Show { client, id } => cmd::messages::show(client, id).await,
        Command::Peers(args) => cmd::links::peers(args).await,
        Command::Seen { client, id } => cmd::messages::answer(&client, &id, "seen", None).await,
        Command::Ack { client, id } => cmd::messages::answer(&client, &id, "ack", None).await,
        Command::Decline { client, id, reason } => {
            cmd::messages::answer(&client, &id, "decline", Some(json!({"reason": reason}))).await
        }
        Command::Drafts(args) => cmd::drafts::drafts(args).await,
        Command::Release { client, id } => cmd::drafts::release(client, id).await,
        Command::Alarms { client, all } => cmd::alarms::alarms(client, all).await,
        Command::AlarmAck { client, id } => cmd::alarms::ack(client, id).await,
        Command::Links(args) => cmd::links::links(args).await,
        Command::Watch { client, after, count } => cmd::watch::watch(&client, after, count).await,
        Command::Demo { members, state, base_port, init_only, no_scenario, admit } => {
            cmd::demo::demo(members, state, base_port, init_only, no_scenario, admit, cli.log_format).await
        }
        Command::Bench(args) => bench::run(args).await,
        Command::Completions { shell } => cmd::generate::completions(Cli::command(), shell),
        Command::Man { out } => cmd::generate::man(Cli::command(), &out),
    }
}

//! `adi`: the one binary. It parses the command line and calls into the crates; the logic lives
//! there.

#![forbid(unsafe_code)]

mod bench;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adi_node::client::{ApiFailure, Client};
use adi_node::setup::{self, InitOptions};
use adi_node::{Node, NodeConfig};
use anyhow::{anyhow, Context};
use clap::{Args, Parser, Subcommand};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// How many times in a row `adi watch` reconnects a dropped event stream before it gives up.
const WATCH_RETRIES: u32 = 5;
/// How long `adi watch` waits before reconnecting, times the attempt's number.
const WATCH_RETRY_DELAY_MS: u64 = 1_000;

/// Prints a line to stdout; a closed pipe (as with `adi inbox | head`) ends the command quietly
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

#[derive(Parser)]
#[command(name = "adi", version, about = "ADI: the Direct Communications Infrastructure of the ADMM-Plus")]
struct Cli {
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
    },
    /// Assemble a roster from member cards.
    Roster {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "ADI roster")]
        name: String,
        #[arg(required = true)]
        cards: Vec<PathBuf>,
    },
    /// Run a member's node.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage operators.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
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
    },
    /// Check a bundle offline: every signature, chain link, proof, receipt and checkpoint.
    Verify {
        file: PathBuf,
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
    },
    /// Measure latency, throughput, network build, catch-up and resources on real node processes,
    /// each beside the machine's physical floor.
    Bench(bench::BenchArgs),
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
enum OperatorCommand {
    /// Add an operator (or replace its token) and print the token once.
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
    },
}

#[derive(Args)]
struct ClientArgs {
    /// The node's API URL.
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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init { member, dir, name, community, endpoints, federation_listen, api_listen } => {
            let out = setup::init_member(&InitOptions {
                member,
                dir,
                name,
                community,
                endpoints,
                federation_listen,
                api_listen,
                discipline: adi_node::config::DisciplineSection::default(),
            })?;
            out!("created {} (config) and {} (public card)", out.config.display(), out.card.display());
            out!("member {} ({}), TLS pin {}", out.entry.code, out.entry.community, out.entry.tls_pin);
            out!("next: assemble a roster from every member's card with `adi roster --out roster.toml CARD...`");
            Ok(())
        }
        Command::Roster { out, name, cards } => {
            let members = setup::read_cards(&cards)?;
            let roster = setup::assemble_roster(&name, members)?;
            std::fs::write(&out, roster.to_toml()).with_context(|| format!("cannot write {}", out.display()))?;
            out!("wrote {} with {} members", out.display(), roster.members.len());
            Ok(())
        }
        Command::Serve { config } => {
            init_logging("info");
            let config = NodeConfig::load(&config).map_err(|e| anyhow!("{e}"))?;
            let stop = StopSignal::listen()?;
            let node = Node::start(config).await?;
            out!("node {} ready: API http://{}", node.state.member, node.api_addr);
            stop.wait().await;
            node.stop().await;
            Ok(())
        }
        Command::Operator { command: OperatorCommand::Add { config, name, role, password_stdin } } => {
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
        Command::Lines(args) => {
            let v = args.client()?.call(Method::GET, "/api/v1/lines", None).await?;
            print_out(args.json, &v, |v| {
                for l in v.as_array().into_iter().flatten() {
                    out!("{}  {:<9}  {:<24}  {}", s(l, "id"), s(l, "scope"), join(l.get("members")), s(l, "title"));
                }
            });
            Ok(())
        }
        Command::NewLine { client, members, scope, title } => {
            let body = json!({"members": members, "scope": scope, "title": title});
            let v = client.client()?.call(Method::POST, "/api/v1/lines", Some(&body)).await?;
            print_out(client.json, &v, |v| {
                out!("line {} opened ({}, {})", s(v, "id"), s(v, "scope"), join(v.get("members")))
            });
            Ok(())
        }
        Command::Send { client, line, precedence, class, caveat, subject, body, ack_required, kind, file, ewg } => {
            let form = match (kind, file) {
                (Some(kind), Some(file)) => Some(read_form(&kind, &file)?),
                _ => None,
            };
            if form.is_none() && subject.as_deref().is_none_or(|s| s.trim().is_empty()) {
                anyhow::bail!("a free-text message needs --subject; nothing was sent");
            }
            let req = json!({"precedence": precedence, "class": class, "caveat": caveat,
                             "subject": subject.unwrap_or_default(), "body": body.unwrap_or_default(),
                             "ack_required": ack_required, "form": form, "ewg": ewg});
            let (status, v) = client
                .client()?
                .call_with_status(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&req))
                .await?;
            if status == StatusCode::ACCEPTED {
                print_out(client.json, &v, print_held_draft);
            } else {
                print_out(client.json, &v, print_message);
            }
            Ok(())
        }
        Command::Inbox { client, limit } => {
            let v = client.client()?.call(Method::GET, &format!("/api/v1/inbox?limit={limit}"), None).await?;
            print_out(client.json, &v, |v| {
                for m in v.as_array().into_iter().flatten() {
                    out!(
                        "{:<9}  {:<11}  from {:<4}  {}  {}",
                        s(m, "precedence"),
                        s(m, "class"),
                        s(m, "sender"),
                        s(m, "subject"),
                        s(m, "id")
                    );
                }
            });
            Ok(())
        }
        Command::Export { client, line, from, to, out } => {
            let mut query = Vec::new();
            query.extend(from.map(|f| format!("from_ms={f}")));
            query.extend(to.map(|t| format!("to_ms={t}")));
            let path = format!("/api/v1/lines/{line}/export?{}", query.join("&"));
            let v = client.client()?.call(Method::GET, &path, None).await?;
            let text = serde_json::to_string_pretty(&v)?;
            std::fs::write(&out, text).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
            let count = v.get("envelopes").and_then(Value::as_array).map_or(0, Vec::len);
            out!("wrote {} ({count} envelopes of line {line})", out.display());
            Ok(())
        }
        Command::Verify { file, quiet, reports } => verify_bundle(&file, quiet, reports),
        Command::Decision { command } => {
            let (client, v) = match command {
                DecisionCommand::Propose { client, line, text, parties, deadline_s, supersedes } => {
                    let body =
                        json!({"text": text, "parties": parties, "deadline_s": deadline_s, "supersedes": supersedes});
                    let path = format!("/api/v1/lines/{line}/decisions");
                    let v = client.client()?.call(Method::POST, &path, Some(&body)).await?;
                    (client, v)
                }
                DecisionCommand::Concur { client, id } => {
                    let path = format!("/api/v1/decisions/{id}/concur");
                    let v = client.client()?.call(Method::POST, &path, Some(&json!({}))).await?;
                    (client, v)
                }
                DecisionCommand::Decline { client, id, reason } => {
                    let path = format!("/api/v1/decisions/{id}/decline");
                    let v = client.client()?.call(Method::POST, &path, Some(&json!({"reason": reason}))).await?;
                    (client, v)
                }
                DecisionCommand::Show { client, id } => {
                    let v = client.client()?.call(Method::GET, &format!("/api/v1/decisions/{id}"), None).await?;
                    (client, v)
                }
            };
            print_out(client.json, &v, print_decision);
            Ok(())
        }
        Command::Cpa { own, other, file, json } => cpa(own, other, file, json),
        Command::Show { client, id } => {
            let v = client.client()?.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await?;
            print_out(client.json, &v, print_message);
            Ok(())
        }
        Command::Peers(args) => {
            let v = args.client()?.call(Method::GET, "/api/v1/peers", None).await?;
            print_out(args.json, &v, |v| {
                for p in v.as_array().into_iter().flatten() {
                    out!(
                        "{:<4}  queue {:>6}  endpoint {:<22}  {}",
                        s(p, "member"),
                        p.get("queue_len").and_then(Value::as_u64).unwrap_or(0),
                        p.get("endpoint").and_then(Value::as_str).unwrap_or("-"),
                        p.get("last_error").and_then(Value::as_str).unwrap_or("")
                    );
                }
            });
            Ok(())
        }
        Command::Seen { client, id } => answer(&client, &id, "seen", None).await,
        Command::Ack { client, id } => answer(&client, &id, "ack", None).await,
        Command::Decline { client, id, reason } => {
            answer(&client, &id, "decline", Some(json!({"reason": reason}))).await
        }
        Command::Drafts(args) => {
            let v = args.client()?.call(Method::GET, "/api/v1/drafts", None).await?;
            print_out(args.json, &v, |v| {
                let drafts = v.as_array().map(Vec::as_slice).unwrap_or_default();
                if drafts.is_empty() {
                    out!("no messages await release");
                    return;
                }
                out!("{:>5}  {:<10}  {:<16}  {:<10}  subject", "draft", "precedence", "drafter", "drafted");
                let now = now_ms();
                for d in drafts {
                    out!(
                        "{:>5}  {:<10}  {:<16}  {:<10}  {}",
                        d.get("id").and_then(Value::as_u64).unwrap_or(0),
                        d.pointer("/draft/precedence").and_then(Value::as_str).unwrap_or("?"),
                        s(d, "drafter"),
                        age(now, d.get("created_ms")),
                        d.pointer("/draft/subject").and_then(Value::as_str).unwrap_or("")
                    );
                }
            });
            Ok(())
        }
        Command::Release { client, id } => {
            let v = client.client()?.call(Method::POST, &format!("/api/v1/drafts/{id}/release"), None).await?;
            print_out(client.json, &v, |m| {
                out!("draft {id} released by {} and sent", s(m, "released_by"));
                print_message(m);
            });
            Ok(())
        }
        Command::Alarms { client, all } => {
            let path = if all { "/api/v1/alarms?all=true" } else { "/api/v1/alarms" };
            let v = client.client()?.call(Method::GET, path, None).await?;
            print_out(client.json, &v, |v| {
                let alarms = v.as_array().map(Vec::as_slice).unwrap_or_default();
                if alarms.is_empty() {
                    out!("{}", if all { "no alarms" } else { "no open alarms" });
                    return;
                }
                out!("{:>5}  {:<14}  {:<6}  {:<10}  {:<20}  detail", "alarm", "kind", "member", "raised", "status");
                let now = now_ms();
                for a in alarms {
                    let status = if a.get("cleared_ms").is_some_and(|c| !c.is_null()) {
                        "cleared".to_string()
                    } else if let Some(by) = a.get("acked_by").and_then(Value::as_str) {
                        format!("acked by {by}")
                    } else {
                        "open".to_string()
                    };
                    let repeats = a.get("repeats").and_then(Value::as_u64).unwrap_or(0);
                    let repeats = if repeats > 0 { format!(" (repeated {repeats}x)") } else { String::new() };
                    out!(
                        "{:>5}  {:<14}  {:<6}  {:<10}  {:<20}  {}{repeats}",
                        a.get("id").and_then(Value::as_u64).unwrap_or(0),
                        s(a, "kind"),
                        s(a, "member"),
                        age(now, a.get("raised_ms")),
                        status,
                        s(a, "detail")
                    );
                }
            });
            Ok(())
        }
        Command::AlarmAck { client, id } => {
            let v = client.client()?.call(Method::POST, &format!("/api/v1/alarms/{id}/ack"), None).await?;
            print_out(client.json, &v, |a| {
                out!("alarm {id} ({}, {}) acknowledged by {}", s(a, "kind"), s(a, "member"), s(a, "acked_by"));
                out!("{}", s(a, "detail"));
            });
            Ok(())
        }
        Command::Links(args) => {
            let v = args.client()?.call(Method::GET, "/api/v1/links", None).await?;
            print_out(args.json, &v, |v| {
                let links = v.as_array().map(Vec::as_slice).unwrap_or_default();
                if links.is_empty() {
                    out!("no direct lines with link tests");
                    return;
                }
                out!(
                    "{:<6}  {:<12}  {:>8}  {:>9}  {:>10}  {:>5}  {:>13}  error",
                    "member",
                    "state",
                    "last RTT",
                    "clock",
                    "last ok",
                    "queue",
                    "oldest queued"
                );
                let now = now_ms();
                for l in links {
                    let rtt = l.get("last_rtt_ms").and_then(Value::as_u64).map(|r| format!("{r} ms"));
                    // The peer's clock against this node's, as the last link test measured it.
                    let clock = l.get("clock_offset_ms").and_then(Value::as_i64).map(|o| format!("{o:+} ms"));
                    let oldest =
                        l.get("oldest_queued_age_ms").and_then(Value::as_u64).map(|a| format!("{} s", a / 1000));
                    out!(
                        "{:<6}  {:<12}  {:>8}  {:>9}  {:>10}  {:>5}  {:>13}  {}",
                        s(l, "member"),
                        s(l, "state"),
                        rtt.as_deref().unwrap_or("-"),
                        clock.as_deref().unwrap_or("-"),
                        age(now, l.get("last_ok_ms")),
                        l.get("queue_len").and_then(Value::as_u64).unwrap_or(0),
                        oldest.as_deref().unwrap_or("-"),
                        s(l, "last_error")
                    );
                }
            });
            Ok(())
        }
        Command::Watch { client, after, count } => watch(&client, after, count).await,
        Command::Demo { members, state, base_port, init_only, no_scenario } => {
            demo(members, state, base_port, init_only, no_scenario).await
        }
        Command::Bench(args) => bench::run(args).await,
    }
}

/// SIGINT and SIGTERM, listened for from the moment this is made, so that a signal that arrives
/// just after a prompt is not lost.
struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn listen() -> anyhow::Result<StopSignal> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignal { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn join(v: Option<&Value>) -> String {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn print_out(as_json: bool, v: &Value, human: impl FnOnce(&Value)) {
    if as_json {
        out!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        human(v);
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// How long ago a time in milliseconds was, in seconds: `12 s ago`, or `-` when there is none.
fn age(now: u64, at_ms: Option<&Value>) -> String {
    match at_ms.and_then(Value::as_u64) {
        Some(t) => format!("{} s ago", now.saturating_sub(t) / 1000),
        None => "-".into(),
    }
}

/// A time in milliseconds since the epoch, in UTC: `2024-05-01 12:34:56Z`.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Answers a message from another member: `verb` is `seen`, `ack` or `decline`.
async fn answer(args: &ClientArgs, id: &str, verb: &str, body: Option<Value>) -> anyhow::Result<()> {
    let v = args.client()?.call(Method::POST, &format!("/api/v1/messages/{id}/{verb}"), body.as_ref()).await?;
    print_out(args.json, &v, |m| {
        let done = match verb {
            "seen" => "seen",
            "ack" => "acknowledged",
            _ => "declined",
        };
        out!(
            "{done}: {} from {} (#{}): {}",
            s(m, "precedence"),
            s(m, "sender"),
            m.get("seq").and_then(Value::as_u64).unwrap_or(0),
            s(m, "subject")
        );
        out!("id: {}", s(m, "id"));
    });
    Ok(())
}

fn print_held_draft(d: &Value) {
    let id = d.get("id").and_then(Value::as_u64).unwrap_or(0);
    out!(
        "held for a principal's release: draft {id} ({} '{}' on line {}, drafted by {})",
        d.pointer("/draft/precedence").and_then(Value::as_str).unwrap_or("?"),
        d.pointer("/draft/subject").and_then(Value::as_str).unwrap_or(""),
        s(d, "line"),
        s(d, "drafter")
    );
    out!("a principal sends it with `adi release {id}`");
}

/// One event of the stream as its fields arrive: `id:`, `event:` and `data:` lines up to a blank
/// line.
#[derive(Default)]
struct SseEvent {
    id: Option<u64>,
    kind: String,
    data: Vec<String>,
}

impl SseEvent {
    /// Takes one line of the stream; returns the event a blank line completes.
    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = std::mem::take(self);
            return (!event.data.is_empty()).then_some(event);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" => self.id = value.trim().parse().ok(),
            "event" => self.kind = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }
}

fn print_event(as_json: bool, e: &SseEvent) {
    let data = e.data.join("\n");
    let v: Value = match serde_json::from_str(&data) {
        Ok(v) => v,
        Err(_) => {
            out!("{data}");
            return;
        }
    };
    if as_json {
        out!("{}", serde_json::to_string(&v).unwrap_or(data));
    } else {
        let kind = if e.kind.is_empty() { s(&v, "kind") } else { e.kind.as_str() };
        let mut detail = s(&v, "detail").to_string();
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            detail = format!("{detail}  message {m}");
        }
        if let Some(a) = v.get("alarm").and_then(Value::as_u64) {
            detail = format!("{detail}  alarm {a}");
        }
        out!(
            "{}  {:<7}  {:<4}  {:<16}  {}",
            utc(v.get("at_ms").and_then(Value::as_u64).unwrap_or(0)),
            kind,
            s(&v, "member"),
            s(&v, "state"),
            detail.trim_start()
        );
    }
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().flush() {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// Prints the event stream as it arrives; reconnects a dropped stream from the last event printed.
async fn watch(args: &ClientArgs, after: Option<u64>, count: Option<u64>) -> anyhow::Result<()> {
    let client = args.client()?;
    let mut last_id = after;
    let mut printed = 0u64;
    let mut failures = 0u32;
    let mut connected_before = false;
    loop {
        let resume = last_id.map(|id| id.to_string());
        let mut headers = vec![("Accept", "text/event-stream")];
        headers.extend(resume.iter().map(|id| ("Last-Event-ID", id.as_str())));
        let dropped = match client.stream_lines("/api/v1/events", &headers).await {
            Err(e) if e.downcast_ref::<ApiFailure>().is_some_and(|f| f.status.is_client_error()) => return Err(e),
            Err(e) => format!("{e:#}"),
            Ok(mut stream) => {
                let from = match last_id {
                    Some(id) => format!("after event {id}"),
                    None => "from now".to_string(),
                };
                if connected_before {
                    eprintln!("note: reconnected to {}; events {from}", args.url);
                } else {
                    eprintln!("watching the events of {} {from}", args.url);
                }
                connected_before = true;
                let mut event = SseEvent::default();
                loop {
                    match stream.next_line().await {
                        Ok(Some(line)) => {
                            // The connection carries data: a later drop starts a fresh count.
                            failures = 0;
                            let Some(e) = event.line(&line) else { continue };
                            print_event(args.json, &e);
                            if e.kind != "gap" {
                                last_id = e.id.or(last_id);
                            }
                            printed += 1;
                            if count.is_some_and(|c| printed >= c) {
                                return Ok(());
                            }
                        }
                        Ok(None) => break "the node ended the stream".to_string(),
                        Err(e) => break format!("{e:#}"),
                    }
                }
            }
        };
        failures += 1;
        if failures > WATCH_RETRIES {
            anyhow::bail!("the event stream dropped and {WATCH_RETRIES} reconnections failed: {dropped}");
        }
        let delay = WATCH_RETRY_DELAY_MS * u64::from(failures);
        let resume = last_id.map(|id| format!(" after event {id}")).unwrap_or_default();
        eprintln!(
            "note: the event stream dropped ({dropped}); reconnecting{resume} in {} s (attempt {failures} of {WATCH_RETRIES})",
            delay / 1000
        );
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
}

/// Reads a report from a file and checks it here, so that a bad field is named before anything
/// is sent; the node checks it again.
fn read_form(kind: &str, file: &Path) -> anyhow::Result<Value> {
    if !adi_forms::KINDS.contains(&kind) {
        anyhow::bail!("unknown kind '{kind}'; one of {}; nothing was sent", adi_forms::KINDS.join(", "));
    }
    let text = std::fs::read_to_string(file).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let mut value: Value =
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: not JSON: {e}; nothing was sent", file.display()))?;
    if let Some(map) = value.as_object_mut() {
        match map.get("kind").and_then(Value::as_str) {
            None => {
                map.insert("kind".into(), json!(kind));
            }
            Some(k) if k != kind => {
                anyhow::bail!("{}: the report's kind is {k}, not {kind}; nothing was sent", file.display())
            }
            Some(_) => {}
        }
    }
    let form = adi_forms::check(&value).map_err(|e| anyhow!("{}: {e}; nothing was sent", file.display()))?;
    Ok(form.to_value())
}

fn parse_track(name: &str, text: &str) -> anyhow::Result<adi_forms::cpa::Track> {
    let parts: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("--{name} '{text}': expected LAT,LON,COURSE,SPEED as numbers"))?;
    let [lat, lon, course_deg, speed_kn] = parts[..] else {
        anyhow::bail!("--{name} '{text}': expected four numbers, LAT,LON,COURSE,SPEED");
    };
    let track = adi_forms::cpa::Track { position: adi_forms::Position::new(lat, lon), course_deg, speed_kn };
    adi_forms::check::track(name, &track).map_err(|e| anyhow!("--{e}"))?;
    Ok(track)
}

fn cpa(own: Option<String>, other: Option<String>, file: Option<PathBuf>, json_out: bool) -> anyhow::Result<()> {
    let approaches = match (own, other, file) {
        (_, _, Some(file)) => {
            let form = read_form("encounter-at-sea", &file)?;
            let form = adi_forms::check(&form).map_err(|e| anyhow!("{e}"))?;
            adi_forms::approaches(&form)
        }
        (Some(own), Some(other), None) => vec![adi_forms::UnitApproach {
            own: "own".into(),
            other: "other".into(),
            approach: adi_forms::cpa::approach(&parse_track("own", &own)?, &parse_track("other", &other)?),
        }],
        _ => anyhow::bail!("give --own and --other, or --file"),
    };
    if json_out {
        out!("{}", serde_json::to_string_pretty(&approaches)?);
        return Ok(());
    }
    for a in &approaches {
        let x = &a.approach;
        out!("{} to {}:", a.own, a.other);
        out!(
            "  range now        {:.2} nm, bearing {:03.0}° (relative {:03.0}°)",
            x.range_nm,
            x.bearing_deg,
            x.relative_bearing_deg
        );
        match x.tcpa_min {
            Some(t) => out!("  closest approach {:.2} nm in {t:.1} min", x.cpa_nm),
            None => out!("  closest approach {:.2} nm (no relative motion)", x.cpa_nm),
        }
        out!("  suggested        {}: {}", x.situation.as_str(), x.situation.advice());
    }
    out!("This is a suggestion from the positions, courses and speeds given; confirm it before it goes in a report (\"situation\").");
    Ok(())
}

fn print_message(m: &Value) {
    out!("id:         {}", s(m, "id"));
    out!(
        "line:       {}  from {} (#{})",
        s(m, "line"),
        s(m, "sender"),
        m.get("seq").and_then(Value::as_u64).unwrap_or(0)
    );
    out!("precedence: {}  class: {}  caveat: {}", s(m, "precedence"), s(m, "class"), s(m, "caveat"));
    out!("subject:    {}", s(m, "subject"));
    if let Some(tag) = m.get("ewg").and_then(Value::as_str) {
        out!("working group: {tag}");
    }
    if !s(m, "body").is_empty() {
        out!("{}", s(m, "body"));
    }
    if let Some(text) = m.get("form_text").and_then(Value::as_str) {
        out!("{text}");
    }
    for a in m.get("approaches").and_then(Value::as_array).into_iter().flatten() {
        let x = &a["approach"];
        out!(
            "computed:   {} to {}: CPA {:.2} nm{}, {} (a suggestion from the positions reported)",
            s(a, "own"),
            s(a, "other"),
            x["cpa_nm"].as_f64().unwrap_or(f64::NAN),
            x["tcpa_min"].as_f64().map(|t| format!(" in {t:.0} min")).unwrap_or_default(),
            s(x, "situation")
        );
    }
    for r in m.get("recipients").and_then(Value::as_array).into_iter().flatten() {
        let decrypted = if r.get("decrypted_ms").is_some_and(Value::is_u64) { "decrypted" } else { "" };
        let detail = r.get("detail").and_then(Value::as_str).unwrap_or("");
        out!("  {:<4} {:<12} {:<9} {detail}", s(r, "member"), s(r, "state"), decrypted);
    }
}

async fn demo(
    members: Option<Vec<String>>,
    state: Option<PathBuf>,
    base_port: u16,
    init_only: bool,
    no_scenario: bool,
) -> anyhow::Result<()> {
    init_logging("warn");
    let codes: Vec<String> = match members {
        Some(m) => m.into_iter().map(|c| c.trim().to_ascii_uppercase()).collect(),
        None => setup::members_2022().into_iter().map(|m| m.code).collect(),
    };
    let state = state.unwrap_or_else(|| std::env::temp_dir().join(format!("adi-demo-{}", std::process::id())));
    let demo = if state.join("demo.json").exists() {
        out!("using the existing network in {}", state.display());
        let text = std::fs::read_to_string(state.join("demo.json"))?;
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", state.join("demo.json").display()))?
    } else {
        out!("generating keys, cards, roster and configs for {} members in {}", codes.len(), state.display());
        let total = codes.len();
        setup::demo_init(&state, &codes, base_port, |i, code| out!("  [{i:>2}/{total}] {code}: keys and card"))?
    };
    if init_only {
        print_demo_table(&demo);
        out!(
            "state written to {}; run each node with `adi serve --config <config>`",
            state.join("demo.json").display()
        );
        return Ok(());
    }
    let total = demo.members.len();
    let mut nodes = Vec::new();
    for (i, m) in demo.members.iter().enumerate() {
        let config = NodeConfig::load(Path::new(&m.config)).map_err(|e| anyhow!("{e}"))?;
        let node = Node::start(config).await.with_context(|| format!("starting {}", m.code))?;
        out!("  [{:>2}/{total}] {} node ready at {}", i + 1, m.code, m.api_url);
        nodes.push(node);
    }
    print_demo_table(&demo);
    out!("state: {}", state.join("demo.json").display());
    if let Some(first) = demo.members.first() {
        out!(
            "console: {}/console, operator duty-{} (each member's duty officer; passwords in demo.json)",
            first.api_url,
            first.code
        );
    }
    if !no_scenario {
        if let Err(e) = scenario(&demo).await {
            eprintln!("scenario failed: {e:#}");
        }
    }
    let stop = StopSignal::listen()?;
    out!("network running; press Ctrl-C to stop");
    stop.wait().await;
    out!("stopping {} nodes", nodes.len());
    for n in nodes {
        n.stop().await;
    }
    out!("stopped");
    Ok(())
}

fn print_demo_table(demo: &setup::DemoState) {
    out!("{:<6} {:<24} token", "member", "API URL");
    for m in &demo.members {
        out!("{:<6} {:<24} {}", m.code, m.api_url, m.token);
    }
}

/// A FLASH about an unplanned encounter at sea between an ASEAN member and a Plus member.
async fn scenario(demo: &setup::DemoState) -> anyhow::Result<()> {
    let communities: std::collections::HashMap<String, String> =
        setup::known_members().into_iter().map(|m| (m.code, m.community)).collect();
    let pick = |preferred: &str, community: &str| {
        demo.members
            .iter()
            .find(|m| m.code == preferred)
            .or_else(|| demo.members.iter().find(|m| communities.get(&m.code).map(String::as_str) == Some(community)))
    };
    let (Some(from), Some(to)) = (pick("PH", "ASEAN"), pick("CN", "PLUS")) else {
        out!("scenario skipped: it needs one ASEAN and one Plus member");
        return Ok(());
    };
    let client = Client::new(&from.api_url, Some(from.token.clone()), None)?;
    let line = client
        .call(
            Method::POST,
            "/api/v1/lines",
            Some(&json!({"members": [from.code, to.code], "scope": "ADMM-Plus",
                        "title": format!("{}–{} direct line", from.code, to.code)})),
        )
        .await?;
    let line_id = s(&line, "id").to_string();
    out!("scenario: {} opened an ADMM-Plus direct line to {}: {line_id}", from.code, to.code);
    let started = Instant::now();
    let msg = client
        .call(
            Method::POST,
            &format!("/api/v1/lines/{line_id}/messages"),
            Some(&json!({
                "precedence": "FLASH",
                "subject": "Unplanned encounter at sea",
                "body": "Our patrol vessel reports a close-quarters situation with one of your units. \
                         Request you contact your unit to keep safe distance in accordance with CUES and COLREGs.",
            })),
        )
        .await?;
    let id = s(&msg, "id").to_string();
    out!("scenario: {} sent FLASH {id}", from.code);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = client.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await?;
        let delivered = m
            .get("recipients")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().all(|r| s(r, "state") == "delivered"));
        if delivered {
            out!(
                "scenario: FLASH delivered to {} in {} ms (committed at both nodes)",
                to.code,
                started.elapsed().as_millis()
            );
            break;
        }
        if Instant::now() > deadline {
            out!("scenario: FLASH not yet delivered after 30 s; see `adi peers`");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let to_client = Client::new(&to.api_url, Some(to.token.clone()), None)?;
    let inbox = to_client.call(Method::GET, "/api/v1/inbox?limit=5", None).await?;
    if let Some(first) = inbox.as_array().and_then(|a| a.first()) {
        out!(
            "scenario: {}'s inbox shows {} from {}: {}",
            to.code,
            s(first, "precedence"),
            s(first, "sender"),
            s(first, "subject")
        );
    }

    // The duty officer at the other desk acknowledges; the acknowledgement is a signed receipt.
    let acked_at = Instant::now();
    to_client.call(Method::POST, &format!("/api/v1/messages/{id}/ack"), None).await?;
    let state = wait_recipient_state(&client, &id, "acknowledged", Duration::from_secs(30)).await?;
    out!(
        "scenario: {} acknowledged the FLASH; {}'s node shows it signed and recorded in {} ms ({state})",
        to.code,
        from.code,
        acked_at.elapsed().as_millis()
    );

    // A second message is left unanswered: its deadline passes and both ends raise the alarm.
    let immediate = client
        .call(
            Method::POST,
            &format!("/api/v1/lines/{line_id}/messages"),
            Some(&json!({
                "precedence": "IMMEDIATE",
                "subject": "Request for a call between defence ministers",
                "body": "Proposing a call at 0900 UTC tomorrow to discuss the incident.",
            })),
        )
        .await?;
    let immediate_id = s(&immediate, "id").to_string();
    let deadline_s = immediate
        .get("deadline_ms")
        .and_then(Value::as_u64)
        .zip(immediate.get("created_ms").and_then(Value::as_u64))
        .map(|(d, c)| d.saturating_sub(c) / 1000)
        .unwrap_or(0);
    out!("scenario: {} sent an IMMEDIATE that nobody will acknowledge; its deadline is {deadline_s} s", from.code);
    let (watch_from, watch_to) = (client.clone(), to_client.clone());
    let (from_code, to_code) = (from.code.clone(), to.code.clone());
    tokio::spawn(async move {
        let escalation = wait_alarm(&watch_to, "escalation", &immediate_id, Duration::from_secs(deadline_s + 60)).await;
        let unacked = wait_alarm(&watch_from, "unacknowledged", &immediate_id, Duration::from_secs(30)).await;
        if let (Some(e), Some(u)) = (escalation, unacked) {
            out!("scenario: {to_code}'s node escalates: {}", s(&e, "detail"));
            out!("scenario: {from_code}'s node raises: {}", s(&u, "detail"));
            out!("scenario: acknowledge with `adi ack {immediate_id}` at {to_code} to clear both");
        }
    });

    // Direct lines from the sender to every other member, tested automatically.
    let others: Vec<&setup::DemoMember> =
        demo.members.iter().filter(|m| m.code != from.code && m.code != to.code).collect();
    for m in &others {
        let body = json!({"members": [from.code, m.code], "scope": "ADMM-Plus"});
        client.call(Method::POST, "/api/v1/lines", Some(&body)).await?;
    }
    let expected = others.len() + 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let links = client.call(Method::GET, "/api/v1/links", None).await?;
        let links = links.as_array().cloned().unwrap_or_default();
        let healthy = links.iter().filter(|l| s(l, "state") == "healthy").count();
        if healthy >= expected || Instant::now() > deadline {
            let rtt_max = links.iter().filter_map(|l| l.get("last_rtt_ms").and_then(Value::as_u64)).max().unwrap_or(0);
            out!(
                "scenario: link tests from {}: {healthy} of {expected} direct lines healthy (slowest round trip {rtt_max} ms); see `adi links`",
                from.code
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until every recipient of a message is in `state`.
async fn wait_recipient_state(client: &Client, id: &str, state: &str, within: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + within;
    loop {
        let m = client.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await?;
        let recipients = m.get("recipients").and_then(Value::as_array).cloned().unwrap_or_default();
        if !recipients.is_empty() && recipients.iter().all(|r| s(r, "state") == state) {
            return Ok(recipients
                .iter()
                .map(|r| format!("{} {}", s(r, "member"), s(r, "state")))
                .collect::<Vec<_>>()
                .join(", "));
        }
        if Instant::now() > deadline {
            anyhow::bail!("message {id} did not reach {state} within {} s", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for an open alarm of `kind` about `message`.
async fn wait_alarm(client: &Client, kind: &str, message: &str, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(alarms) = client.call(Method::GET, "/api/v1/alarms", None).await {
            let found =
                alarms.as_array().into_iter().flatten().find(|a| s(a, "kind") == kind && s(a, "message") == message);
            if let Some(a) = found {
                return Some(a.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

fn print_decision(d: &Value) {
    out!("decision {}  on line {}  by {}", s(d, "id"), s(d, "line"), s(d, "proposer"));
    out!("state:    {}", s(d, "state"));
    let list = |k: &str| {
        d.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
    };
    out!("parties:  {}", list("parties").unwrap_or_default());
    if let Some(missing) = list("missing").filter(|m| !m.is_empty()) {
        out!("missing:  {missing}");
    }
    if let Some(old) = d.get("supersedes").and_then(Value::as_str) {
        out!("replaces: {old}");
    }
    if let Some(new) = d.get("superseded_by").and_then(Value::as_str) {
        out!("replaced by: {new}");
    }
    out!("text (SHA-256 {}):\n{}", s(d, "text_sha256"), s(d, "text"));
    for a in d.get("answers").and_then(Value::as_array).into_iter().flatten() {
        let verb = if a.get("concur").and_then(Value::as_bool) == Some(true) { "concurred" } else { "declined" };
        let other = if a.get("over_this_text").and_then(Value::as_bool) == Some(true) { "" } else { " (another text)" };
        let reason = a.get("reason").and_then(Value::as_str).map(|r| format!(": {r}")).unwrap_or_default();
        out!("  {:<4} {verb}{other}{reason}", s(a, "member"));
    }
}

/// Checks a bundle offline and prints each check; fails naming the first broken item.
fn verify_bundle(file: &Path, quiet: bool, reports: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let bundle: adi_record::bundle::Bundle =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a bundle: {e}", file.display()))?;
    let report = adi_record::bundle::verify(&bundle);
    if !quiet {
        for c in &report.checks {
            match &c.failure {
                None => out!("ok    {}", c.item),
                Some(why) => out!("FAIL  {}: {why}", c.item),
            }
        }
    }
    if reports {
        for e in bundle.envelopes.iter().filter(|e| e.form_text.is_some()) {
            let who = hex::decode(&e.bytes)
                .ok()
                .and_then(|b| adi_wire::Envelope::decode(&b, usize::MAX, usize::MAX).ok())
                .map(|env| format!("{} #{}", env.body().sender, env.body().seq))
                .unwrap_or_default();
            out!("\nreport at log index {} ({who}):", e.index);
            out!("{}", e.form_text.as_deref().unwrap_or(""));
        }
    }
    let failed = report.checks.iter().filter(|c| c.failure.is_some()).count();
    match report.first_failure() {
        None => {
            out!(
                "verified: {} checks passed ({} envelopes, line {})",
                report.checks.len(),
                bundle.envelopes.len(),
                bundle.line.id
            );
            Ok(())
        }
        Some(first) => anyhow::bail!(
            "{failed} of {} checks failed; the first: {}: {}",
            report.checks.len(),
            first.item,
            first.failure.as_deref().unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_dates_and_leap_days() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_700_000_000_999), "2023-11-14 22:13:20Z");
    }

    #[test]
    fn stream_lines_make_events() {
        let mut e = SseEvent::default();
        let mut events = Vec::new();
        for line in [": keep-alive", "", "id: 7", "event: message", "data: {\"kind\":\"message\"}", "", "data:x", ""] {
            events.extend(e.line(line));
        }
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].id, events[0].kind.as_str()), (Some(7), "message"));
        assert_eq!(events[0].data, ["{\"kind\":\"message\"}"]);
        assert_eq!(
            (events[1].id, events[1].kind.as_str(), events[1].data.as_slice()),
            (None, "", &["x".to_string()][..])
        );
    }
}

//! The roster on the operator API: the version in force and the chain behind it, the proposed
//! versions with who has signed them and who must still sign, and an administrator's proposal
//! or signature, made with this node's key and handed to every member's node (`fed::roster`).

use std::sync::Arc;

use adi_core::amendment::{self, RosterVersion};
use adi_core::Roster;
use adi_engine::roster::{changes, signers, RosterBook};
use adi_wire::files::{RosterFile, RosterVersionFile};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Auth;
use super::error::{check_writable, ApiJson, ApiPath};
use crate::error::{ApiError, ErrorBody};
use crate::fed::roster::{offer, Offered, Source};
use crate::state::NodeState;

/// One member as the roster in force lists it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterMemberView {
    pub code: String,
    pub name: String,
    /// `ASEAN` or `PLUS`.
    pub community: String,
    pub suspended: bool,
    /// The Ed25519 key that signs its envelopes and roster versions, in hex.
    pub signing_key: String,
    /// SHA-256 of its node's TLS key, in hex.
    pub tls_pin: String,
    pub endpoints: Vec<String>,
}

/// One version of the roster's chain.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    pub number: u64,
    /// SHA-256 of the version, in hex; the first version's is the network's identity.
    pub hash: String,
    /// What it changed from the version before, in words (none for the first).
    pub changes: Vec<String>,
    /// The members whose signatures it carries.
    pub signed_by: Vec<String>,
}

/// The roster in force and the chain of versions behind it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterView {
    /// The network's name.
    pub name: String,
    /// The number of the version in force.
    pub number: u64,
    pub hash: String,
    /// The hash of the first version: the network's identity, which auditors pin.
    pub first_hash: String,
    pub members: Vec<RosterMemberView>,
    /// Every version from the first, in order.
    pub versions: Vec<VersionView>,
    /// The roster in force as a roster file, from which an amendment is written.
    #[schema(value_type = Object)]
    pub file: RosterFile,
    /// This member's key rotation under way, if any: its node moves to the new keys once every
    /// peer's node holds the version that gave them; `null` otherwise.
    pub rotation: Option<RotationView>,
}

/// A key rotation this node has not moved to yet.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RotationView {
    /// The version that gave this member its new keys.
    pub version: u64,
    /// The members whose nodes have not yet said they hold it.
    pub waiting_for: Vec<String>,
}

/// A proposed version, with who signed it and what it still lacks.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProposalView {
    pub number: u64,
    /// SHA-256 of the proposed version, in hex: what members sign, and how they name it.
    pub hash: String,
    pub changes: Vec<String>,
    pub signed_by: Vec<String>,
    /// Whether this member has signed it.
    pub signed_here: bool,
    /// What it still lacks before it takes effect, in words; `null` once it has every signature
    /// its rule asks (it then takes effect at once).
    pub lacking: Option<String>,
}

/// A proposal: the whole roster as it would stand.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeRequest {
    /// The roster file (`docs/WIRE.md`, "Roster versions"), as JSON.
    #[schema(value_type = Object)]
    pub roster: RosterFile,
}

/// What became of a proposal or a signature.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProposedView {
    /// `proposed` (kept, gathering signatures) or `in_force` (it met its rule and took effect).
    pub state: String,
    pub proposal: ProposalView,
}

fn proposal_view(node: &NodeState, book: &RosterBook, file: &RosterVersionFile) -> Option<ProposalView> {
    let checked = amendment::check_proposal(&book.current, file).ok()?;
    let key = hex::encode(node.roster().member(&node.member)?.signing_key.as_bytes());
    Some(ProposalView {
        number: checked.number,
        hash: hex::encode(checked.hash),
        changes: changes(&book.current.roster, &checked.roster),
        signed_here: file.signatures.iter().any(|s| s.member == node.member.as_str() && s.key == key),
        lacking: amendment::rules_met(&book.current, &checked).err().map(|e| e.message),
        signed_by: signers(&checked),
    })
}

fn member_view(roster: &Roster, m: &adi_core::Member) -> RosterMemberView {
    RosterMemberView {
        code: m.code.to_string(),
        name: m.name.clone(),
        community: m.community.as_str().to_string(),
        suspended: roster.is_suspended(&m.code),
        signing_key: hex::encode(m.signing_key.as_bytes()),
        tls_pin: hex::encode(m.tls_pin),
        endpoints: m.endpoints.clone(),
    }
}

/// Shows the roster in force
///
/// The version in force, its members, and every version from the first with what each changed
/// and who signed it.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/roster", tag = "roster", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = RosterView, description = "the roster in force and its chain")))]
pub async fn show(State(node): State<Arc<NodeState>>, _auth: Auth) -> Result<Json<RosterView>, ApiError> {
    let book = node.roster_book();
    let roster = &book.current.roster;
    let mut versions = Vec::with_capacity(book.versions.len() + 1);
    // The first version is the configuration's roster file's; the chain is walked from it.
    let first_roster = first_roster_of(&node, &book);
    versions.push(VersionView {
        number: 1,
        hash: hex::encode(book.first_hash),
        changes: Vec::new(),
        signed_by: Vec::new(),
    });
    if let Some(mut at) = first_roster {
        for file in &book.versions {
            let Ok(next) = amendment::check_amendment(&at, file) else { break };
            versions.push(VersionView {
                number: next.number,
                hash: hex::encode(next.hash),
                changes: changes(&at.roster, &next.roster),
                signed_by: signers(&next),
            });
            at = next;
        }
    }
    Ok(Json(RosterView {
        name: roster.name().to_string(),
        number: book.current.number,
        hash: hex::encode(book.current.hash),
        first_hash: hex::encode(book.first_hash),
        members: roster.members().map(|m| member_view(roster, m)).collect(),
        versions,
        file: roster.to_file(),
        rotation: crate::fed::rotation::waiting(&node)
            .map(|w| RotationView { version: w.given, waiting_for: w.waiting.iter().map(|m| m.to_string()).collect() }),
    }))
}

/// The first version, rebuilt from the first version after it (which holds its roster's hash
/// only): the node keeps the first version's roster as its configuration gave it.
fn first_roster_of(node: &NodeState, book: &RosterBook) -> Option<RosterVersion> {
    let first = node.first_roster();
    let v = amendment::check_first(&amendment::first(&first)).ok()?;
    (v.hash == book.first_hash).then_some(v)
}

/// Lists the roster's versions
///
/// Every version after the first, in order, as signed files: what a member's node or an auditor
/// needs to follow the chain from the first version (`adi roster chain`, `roster_versions` in a
/// joining node's configuration).
///
/// The list is whole and does not page: a chain is checked whole, from its first version.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/roster/versions", tag = "roster", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<Object>, description = "the versions after the first, in order")))]
pub async fn versions(State(node): State<Arc<NodeState>>, _auth: Auth) -> Json<Vec<RosterVersionFile>> {
    Json(node.roster_book().versions)
}

/// Lists the proposed versions
///
/// Each proposal this node keeps, with the members that signed it and what it still lacks.
///
/// The list is whole and does not page: the node keeps at most `roster_proposals_max` proposals.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/roster/proposals", tag = "roster", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<ProposalView>, description = "the proposals, oldest first")))]
pub async fn proposals(State(node): State<Arc<NodeState>>, _auth: Auth) -> Json<Vec<ProposalView>> {
    let book = node.roster_book();
    Json(book.proposals.iter().filter_map(|p| proposal_view(&node, &book, p)).collect())
}

fn require_admin(auth: &Auth) -> Result<(), ApiError> {
    if auth.0.role == adi_core::Role::Admin {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "role", "only administrators propose and sign roster versions"))
    }
}

/// What an offer of this node's own came to, as the API answers it.
async fn offered(
    node: &NodeState,
    auth: &Auth,
    file: RosterVersionFile,
) -> Result<(StatusCode, Json<ProposedView>), ApiError> {
    let before = node.roster_book();
    let view = proposal_view(node, &before, &file);
    let outcome = offer(node, Source::Operator(auth.0.name.clone()), file.clone()).await?;
    let after = node.roster_book();
    match outcome {
        Offered::Applied(_) => {
            let mut proposal = view.ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "stale", "superseded"))?;
            proposal.lacking = None;
            proposal.signed_here = true;
            Ok((StatusCode::OK, Json(ProposedView { state: "in_force".into(), proposal })))
        }
        Offered::Kept { .. } => {
            let hash = view.as_ref().map(|v| v.hash.clone()).unwrap_or_default();
            let kept = after
                .proposals
                .iter()
                .filter_map(|p| proposal_view(node, &after, p))
                .find(|p| p.hash == hash)
                .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "stale", "the proposal was superseded"))?;
            Ok((StatusCode::CREATED, Json(ProposedView { state: "proposed".into(), proposal: kept })))
        }
        Offered::Stale | Offered::Ahead => Err(ApiError::new(
            StatusCode::CONFLICT,
            "stale",
            format!("the roster in force is version {}: propose against it", after.current.number),
        )),
    }
}

/// Proposes a roster version
///
/// The whole roster as it would stand after the amendment (a member admitted, suspended,
/// reinstated or removed, a key or an endpoint changed, the policy or the rules changed). The
/// node makes the version that follows the one in force, signs it with this member's key, and
/// hands it to every member's node; it takes effect on every node once it carries the signatures
/// its rule asks.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/v1/roster/proposals", tag = "roster", request_body = ProposeRequest,
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 201, body = ProposedView, description = "kept, signed by this member, gathering signatures"),
              (status = 200, body = ProposedView, description = "it met its rule with this member's signature alone and is in force"),
              (status = 400, body = ErrorBody, description = "`bad_roster`: the roster is not valid, or changes nothing"),
              (status = 403, body = ErrorBody, description = "`role`: only administrators propose"),
              (status = 409, body = ErrorBody, description = "`stale`: another version took effect meanwhile"),
              (status = 429, body = ErrorBody, description = "`roster_limit`: the node keeps the most proposals it may, or the version is past a size limit"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn propose(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiJson(req): ApiJson<ProposeRequest>,
) -> Result<(StatusCode, Json<ProposedView>), ApiError> {
    require_admin(&auth)?;
    check_writable(&node)?;
    let roster = Roster::from_file(&req.roster)
        .map_err(|e| ApiError::bad_field("bad_roster", format!("roster.{}", e.field), e.message))?;
    let book = node.roster_book();
    if amendment::changes(&book.current.roster, &roster).is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_roster",
            format!("the roster is the same as version {}: nothing to propose", book.current.number),
        ));
    }
    let (mut file, hash) = amendment::propose(&book.current, &roster);
    file.signatures.push(node.sign_roster_version(&hash));
    let answer = offered(&node, &auth, file).await?;
    tracing::info!(operator = %auth.0.name, hash = %hex::encode(hash), "roster version proposed");
    Ok(answer)
}

/// Signs a proposed roster version
///
/// Adds this member's signature, by its node's key, to a proposal this node keeps, and hands it
/// to every member's node. Signing again is harmless: nothing changes.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/v1/roster/proposals/{hash}/sign", tag = "roster",
    params(("hash" = String, Path, description = "the proposal's hash: 64 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = ProposedView, description = "signed; `in_force` if it now meets its rule"),
              (status = 403, body = ErrorBody, description = "`role`: only administrators sign"),
              (status = 404, body = ErrorBody, description = "`unknown_proposal`: no such proposal here"),
              (status = 409, body = ErrorBody, description = "`stale`: another version took effect meanwhile"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn sign(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(hash): ApiPath<String>,
) -> Result<(StatusCode, Json<ProposedView>), ApiError> {
    require_admin(&auth)?;
    check_writable(&node)?;
    let book = node.roster_book();
    let views: Vec<(ProposalView, &RosterVersionFile)> =
        book.proposals.iter().filter_map(|p| proposal_view(&node, &book, p).map(|v| (v, p))).collect();
    let Some((view, file)) = views.iter().find(|(v, _)| v.hash == hash.to_ascii_lowercase()) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_proposal", format!("no proposal {hash} here")));
    };
    let mut file = (*file).clone();
    let mut h = [0u8; 32];
    hex::decode_to_slice(&view.hash, &mut h)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "unknown_proposal", format!("no proposal {hash} here")))?;
    file.signatures.push(node.sign_roster_version(&h));
    let (_, answer) = offered(&node, &auth, file).await?;
    tracing::info!(operator = %auth.0.name, hash = %view.hash, "roster version signed");
    Ok((StatusCode::OK, answer))
}

/// Rotates this member's keys
///
/// A routine rotation of this member's signing key and its node's TLS key. The node makes the
/// new keys and keeps them on disk beside its key files; it makes the roster version that gives
/// them to this member, signed by its current key and its new key, which meets the rotation's
/// rule at once, and hands it to every member's node. Every node then keeps taking what this
/// member signed under its old key, and admits its node under its old TLS key for
/// `rotation_overlap_ms`. Once every peer's node holds the version, this node moves: its leaf on
/// every line goes to the new key, and it signs and presents the new keys from then on. A lost
/// or stolen key is not rotated but replaced, by a version the other members sign.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/v1/roster/rotate", tag = "roster",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = ProposedView, description = "the version giving this member its new keys is in force"),
              (status = 403, body = ErrorBody, description = "`role`: only administrators rotate keys"),
              (status = 409, body = ErrorBody, description = "`rotation_under_way`: the node has not moved to the keys of the last rotation yet; `stale`: another version took effect meanwhile"),
              (status = 500, body = ErrorBody, description = "`rotation_failed`: the new keys could not be written beside the key files"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn rotate(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
) -> Result<(StatusCode, Json<ProposedView>), ApiError> {
    require_admin(&auth)?;
    check_writable(&node)?;
    let _one_at_a_time = node.rotation_lock.lock().await;
    let file = crate::fed::rotation::prepare(&node)?;
    let answer = offered(&node, &auth, file).await?;
    tracing::info!(operator = %auth.0.name, "key rotation started");
    Ok(answer)
}

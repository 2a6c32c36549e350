//! The OpenAPI document of the operator API, served at `/api/v1/openapi.json` ([`ApiDoc`]): every
//! operation of the router but the console's page and its static files, generated from the
//! handlers' `#[utoipa::path]` and the types of their JSON.
//!
//! Each handler documents its successes and the refusals of its own; [`Refusals`] adds those that
//! follow from the operation's shape, the same everywhere: 401 (and 500, the store failing) where
//! a token or session is required, 403 `csrf` where a session's request must carry its CSRF
//! token, 400 `bad_path` and `bad_query` where there are path and query parameters, 400
//! `malformed_json`, 413 and 415 where there is a body, and on every operation the 429 with which
//! the API's listener bounds requests without a valid credential from one address
//! (`crate::throttle::Unauthenticated`). [`Schemes`] names the bearer token, the session cookie
//! and the CSRF header the operations' security requirements refer to.

use axum::Json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::auth::SESSION_COOKIE;
use super::{attachments, console, decisions, discipline, forms, lines, messages, record, roster, translations};
use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ADI node API",
        description = "Operator API of one ADI member node.\n\n\
            Every request but `/healthz`, this document and the console's sign-in carries an operator's \
            bearer token (`Authorization: Bearer <token>`, from `adi operator add` or `adi operator token`) \
            or a console session's cookie; a session's state-changing request also carries the session's \
            CSRF token in `X-CSRF-Token`. What each role may do is in each operation's description.\n\n\
            Every error is `{\"error\": code, \"message\": text}` (with `field` when one field of the \
            request is at fault) and the status of its kind; an unknown path is 404 `not_found`, a method \
            the path does not take 405 `method_not_allowed`."
    ),
    paths(
        super::healthz,
        openapi,
        console::sign_in,
        console::session,
        console::sign_out,
        console::urgent,
        lines::create_line,
        lines::list_lines,
        lines::get_line,
        lines::update_keys,
        lines::leave_line,
        lines::add_member,
        lines::remove_member,
        messages::send_message,
        messages::line_messages,
        messages::inbox,
        messages::search,
        record::report,
        messages::get_message,
        messages::get_envelope,
        discipline::seen,
        discipline::ack,
        discipline::decline,
        discipline::drafts,
        discipline::release,
        discipline::alarms,
        discipline::evidence,
        discipline::audit,
        discipline::ack_alarm,
        discipline::links,
        discipline::events,
        discipline::peers,
        decisions::propose,
        decisions::list,
        decisions::get_one,
        decisions::concur,
        decisions::decline,
        translations::translate,
        translations::list,
        translations::review,
        record::line_checkpoints,
        record::new_checkpoint,
        record::export_line,
        attachments::upload,
        attachments::file,
        attachments::pages,
        attachments::page,
        record::confirm_archive,
        forms::schemas,
        forms::closest_approach,
        roster::show,
        roster::versions,
        roster::proposals,
        roster::propose,
        roster::sign,
        roster::rotate
    ),
    components(schemas(ErrorBody, discipline::EventView)),
    modifiers(&Schemes, &Refusals)
)]
pub struct ApiDoc;

/// The document itself
///
/// Served without a token.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "node", security(()),
    responses((status = 200, body = Object, description = "this OpenAPI document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The security schemes: `bearer`, `session` (the cookie) and `csrf` (the header).
pub struct Schemes;

impl Modify for Schemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("an operator's token, from `adi operator add` or `adi operator token`"))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "a console session, from `POST /console/sign-in`",
            ))),
        );
        components.add_security_scheme(
            "watch",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::WATCH_COOKIE,
                "a console page's proof that it signed in on this node, from `POST /console/sign-in`",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "the session's CSRF token (`csrf` of the session), on its state-changing requests",
            ))),
        );
    }
}

/// Adds to every operation the refusals that follow from its shape (the module's documentation
/// lists them), or their codes to the description of a status it documents already.
pub struct Refusals;

/// Which of the common refusals an operation can give.
struct Shape {
    authenticated: bool,
    csrf: bool,
    path: bool,
    query: bool,
    body: bool,
}

impl Shape {
    fn of(op: &Operation) -> Shape {
        let requirements: Vec<serde_json::Value> =
            op.security.iter().flatten().filter_map(|r| serde_json::to_value(r).ok()).collect();
        let names = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
        };
        let params = op.parameters.iter().flatten();
        Shape {
            authenticated: requirements.iter().any(|r| !names(r).is_empty()),
            csrf: requirements.iter().any(|r| names(r).iter().any(|n| n == "csrf")),
            path: params.clone().any(|p| p.parameter_in == ParameterIn::Path),
            query: params.clone().any(|p| p.parameter_in == ParameterIn::Query),
            body: op.request_body.is_some(),
        }
    }

    /// The refusals: status, and what it means here.
    fn refusals(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = vec![(
            "429",
            "`too_many_requests`: too many requests without a valid credential from this address in the last \
             minute; wait as `Retry-After` says",
        )];
        if self.authenticated {
            out.push((
                "401",
                "`unauthorized`, `token_expired` or `session_expired`: no valid bearer token or console session",
            ));
            out.push(("500", "`internal`: the node could not complete the request (the cause is logged)"));
        }
        if self.csrf {
            out.push(("403", "`csrf`: a console session's request without the session's CSRF token"));
        }
        if self.path {
            out.push(("400", "`bad_path`: a path parameter is not of its type"));
        }
        if self.query {
            out.push(("400", "`bad_query`: a query parameter is not of its type, or not one the operation takes"));
        }
        if self.body {
            out.push(("400", "`malformed_json`: the body is not the JSON described; `bad_body`: it could not be read"));
            out.push(("408", "`body_timeout`: the body did not arrive within the node's time"));
            out.push(("413", "`body_too_large`: the body is over the node's limit"));
            out.push(("415", "`unsupported_media_type`: a body not sent as `application/json`"));
        }
        out
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

impl Modify for Refusals {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                for (status, text) in Shape::of(op).refusals() {
                    let responses = &mut op.responses.responses;
                    match responses.get_mut(status) {
                        Some(RefOr::T(r)) => {
                            // Named by its first code.
                            let code = text.split('`').nth(1).unwrap_or(text);
                            if !r.description.contains(&format!("`{code}`")) {
                                r.description = format!("{}; {text}", r.description);
                            }
                        }
                        Some(RefOr::Ref(_)) => {}
                        None => {
                            let content =
                                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
                            let response =
                                ResponseBuilder::new().description(text).content("application/json", content).build();
                            responses.insert(status.to_string(), RefOr::T(response));
                        }
                    }
                    if let (Some(RefOr::T(r)), "429") = (responses.get_mut(status), status) {
                        r.headers.entry("Retry-After".into()).or_insert_with(retry_after);
                    }
                }
            }
        }
    }
}

/// The `Retry-After` header of a 429: seconds to wait.
fn retry_after() -> utoipa::openapi::header::Header {
    let seconds =
        ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)));
    HeaderBuilder::new().schema(seconds.minimum(Some(0))).description(Some("seconds to wait")).build()
}

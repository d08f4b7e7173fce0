//! `GET /openapi.json`: the OpenAPI 3.1 description of every HTTP route.
//!
//! Each handler carries a `#[utoipa::path]` attribute (method, path, parameters, body,
//! answers, credential), and [`super::router`] registers handlers through utoipa-axum's
//! `routes!`, which takes the route's path from that attribute. So the document is built
//! from the same list the router is, and a route cannot be served without being described.
//!
//! Conventions every handler's attribute follows:
//! - `tag`: one of the tags [`ApiDoc`] declares, by service.
//! - `security`: [`BEARER`] for a user's access token, [`ADMIN`] for admin rights; none for
//!   public routes.
//! - `responses`: the success answers and the errors particular to the route. Every
//!   operation also gets a `default` answer, [`ErrorBody`], added by [`finish`]: every error
//!   has that form.
//! - A handler served under several landscapes' paths is described at one and registered
//!   with [`aliased`] for the others.
//! - Every rule the server enforces on a request is in its schema: bounds, lengths, patterns
//!   and formats through `#[schema(...)]` / `#[param(...)]`, and the rules those attributes
//!   cannot state (one of several fields required) as a [`Rule`] of the body type, which
//!   [`finish`] adds to its schema. `scripts/fuzz_api.sh` checks that the two agree.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, Ref, RefOr, Required, Response, ResponseBuilder,
};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::UtoipaMethodRouter;

use super::AppState;

/// Name of the security scheme of a user's access token (a JWT from any login path).
pub const BEARER: &str = "bearer";
/// Name of the security scheme of admin rights: the admin token (`[admin] token` /
/// `TROUPE_ADMIN_TOKEN`), or the access token of a user with role `admin`.
pub const ADMIN: &str = "admin";

/// Every error's body: `{"error": {"code", "message", "request_id", "details"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code: `invalid_argument`, `unauthenticated`, `permission_denied`,
    /// `not_found`, `already_exists`, `failed_precondition`, `resource_exhausted`,
    /// `unavailable`, `deadline_exceeded` or `internal`.
    #[schema(example = "invalid_argument")]
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The request's `x-request-id` (the client's, or the one the node made).
    pub request_id: String,
    /// More about the error, e.g. `{"fields": {"email": "is not a valid address"}}` for a
    /// body that failed validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Troupe",
        description = "One cluster runtime for a company's services. Every node serves every \
            route; a request is forwarded as a message to the service's actors, wherever they \
            live. Lists page with `?page=&per_page=` (or `?limit=&offset=`) and return `items` \
            and `total`. Every reply carries `x-request-id` (the client's, or one the node \
            made). Every write takes an optional `Idempotency-Key` header; a write the \
            event outbox has no room for answers 503 with `details.reason = outbox_full` \
            and `Retry-After`."
    ),
    paths(document),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Conventions),
    tags(
        (name = "runtime", description = "The node and the cluster: health, membership, metrics, ping, the dashboard"),
        (name = "admin", description = "Operating the runtime: actors, chaos, dead letters, built-in load generators"),
        (name = "auth", description = "Registration, login, tokens and the emailed-code flows, under every landscape's paths"),
        (name = "users", description = "Profiles, the user directory, public keys, contacts and user administration"),
        (name = "sessions", description = "Device sessions and last connection"),
        (name = "tasks", description = "Long-running tasks with progress (event stream monitor)"),
        (name = "todos", description = "A user's todo list"),
        (name = "training", description = "Courses with lessons, enrolment and progress, assessments and certificates"),
        (name = "coaching", description = "Coaches, their open slots in the coach's time zone, bookings (one per slot, cluster-wide) and session notes"),
        (name = "engagement", description = "Activity points, badges, leaderboard, feedback and analytics"),
        (name = "chat", description = "Chat requests, messages, broadcast and the live WebSocket channel"),
        (name = "notifications", description = "A user's notifications, preferences and delivery log"),
        (name = "soap", description = "The legacy SOAP user service and its plain-HTTP companions"),
        (name = "images", description = "Stored images"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes (`default` error answers are added by [`finish`], once the
/// router has added the paths).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            BEARER,
            bearer("An access token from any login path (`access_token`)."),
        );
        components.add_security_scheme(
            ADMIN,
            bearer(
                "The admin token (`[admin] token` or `TROUPE_ADMIN_TOKEN`), or the access \
                 token of a user with role `admin`. Missing: 401; not admin: 403.",
            ),
        );
    }
}

/// The operations of a path item.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
}

/// `get /auth/verify/{token}` -> `get_auth_verify_by_token` (and `get /auth/verify-token`
/// -> `get_auth_verify_token`; `get /contacts/` -> `get_contacts_`).
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        let part = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(param) => {
                id.push_str("by_");
                param
            }
            None => part,
        };
        id.extend(
            part.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    if path.len() > 1 && path.ends_with('/') {
        id.push('_');
    }
    id
}

/// Pattern of text without control characters (Unicode `Cc`: U+0000 to U+001F and U+007F
/// to U+009F), what `char::is_control` refuses.
pub const NO_CONTROL: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// Pattern of an account name as the logins and the code flows read it (a username or an
/// email address): 1 to 254 characters once the white space around it is trimmed, without
/// control characters inside. `\s` differs between regex dialects, so white space is
/// spelled out as Rust's `char::is_whitespace` has it.
pub const ACCOUNT: &str = concat!(
    r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"[^\x00-\x1f\x7f-\x9f \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
    r"(?:[^\x00-\x1f\x7f-\x9f]{0,252}",
    r"[^\x00-\x1f\x7f-\x9f \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?",
    r"[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
);

/// Pattern of a password's letter-and-digit rule (with `minLength` 8 and `maxLength` 128):
/// at least one letter and one digit, in either order.
pub const PASSWORD: &str = r"([^\W\d_][\s\S]*[0-9]|[0-9][\s\S]*[^\W\d_])";

/// A rule of a request body that `#[schema(...)]` attributes cannot state (e.g. "one of
/// these fields is required"), as JSON Schemas the body must also match.
pub trait Rule: ToSchema {
    /// The schemas the body must match besides its derived one.
    fn rules() -> Vec<Value>;
}

/// The rule "of `fields`, the first one given matches its schema; one is given", how the
/// logins read `login`, `username` and `email`. Each field comes with the schema of a valid
/// value and the schema of a value that counts as not given (besides being absent), e.g.
/// `null`.
pub fn first_given(fields: &[(&str, Value, Value)]) -> Value {
    let alternatives: Vec<Value> = (0..fields.len())
        .map(|i| {
            let mut properties = serde_json::Map::new();
            for (earlier, _, skipped) in &fields[..i] {
                properties.insert(earlier.to_string(), skipped.clone());
            }
            let (name, valid, _) = &fields[i];
            properties.insert(name.to_string(), valid.clone());
            json!({"required": [name], "properties": properties})
        })
        .collect();
    json!({ "anyOf": alternatives })
}

/// [`first_given`] of fields that each count as not given when `null`, and are valid when
/// they match `valid`.
pub fn first_non_null(fields: &[&str], valid: Value) -> Value {
    let fields: Vec<(&str, Value, Value)> = fields
        .iter()
        .map(|f| (*f, valid.clone(), json!({"type": "null"})))
        .collect();
    first_given(&fields)
}

/// The schema of an account name ([`ACCOUNT`]).
pub fn account() -> Value {
    json!({"type": "string", "pattern": ACCOUNT})
}

/// The schema of a password: 8 to 128 characters with at least one letter and one digit.
pub fn password() -> Value {
    json!({"type": "string", "minLength": 8, "maxLength": 128, "pattern": PASSWORD})
}

/// Adds `T`'s [`Rule`] to its schema among `doc`'s components: as an `allOf` beside the
/// derived keywords of an object, or as more items of a derived `allOf` (a body with a
/// `#[serde(flatten)]` field).
fn add_rule<T: Rule>(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    let Some(RefOr::T(schema)) = components.schemas.get_mut(T::name().as_ref()) else {
        return;
    };
    let rules = T::rules();
    match schema {
        Schema::Object(object) => {
            object
                .extensions
                .get_or_insert_with(Default::default)
                .insert("allOf".to_string(), Value::Array(rules));
        }
        Schema::AllOf(all) => all
            .items
            .extend(rules.into_iter().map(|rule| RefOr::T(keywords(rule)))),
        _ => panic!("a rule goes with an object or allOf schema"),
    }
}

/// A schema of the keywords of `rule`, a JSON object (utoipa has no type for `anyOf`
/// beside other keywords, so they go in as they are).
fn keywords(rule: Value) -> Schema {
    let Value::Object(keywords) = rule else {
        panic!("a rule is a JSON object");
    };
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .extensions(Some(keywords.into_iter().collect()))
            .build(),
    )
}

/// Every body with a [`Rule`].
fn add_rules(doc: &mut Document) {
    use super::{account, chat, codes, notifications, users};
    add_rule::<account::LoginBody>(doc);
    add_rule::<account::TargetBody>(doc);
    add_rule::<chat::SendRequestBody>(doc);
    add_rule::<codes::Account>(doc);
    add_rule::<codes::ConfirmBody>(doc);
    add_rule::<codes::ResetBody>(doc);
    add_rule::<notifications::PrefsBody>(doc);
    add_rule::<users::ProfileBody>(doc);
}

/// Finishes a document the router described: every operation gets an `operationId` made
/// of its method and path (handler names repeat across services: `list`, `get`, ...), and
/// a `default` answer of [`ErrorBody`] (which covers, among others, a write's 503 with
/// `details.reason = "outbox_full"`); every write (not GET) the optional `Idempotency-Key`
/// header; and the bodies' [`Rule`]s join their schemas.
pub fn finish(doc: &mut Document) {
    add_rules(doc);
    let error: RefOr<Response> = ResponseBuilder::new()
        .description("An error, in the form every error takes")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into();
    let key: RefOr<Parameter> = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes the write safe to send again: a repeat with the same key (same caller, \
             route and body) within 24 hours gets the first answer and changes nothing. \
             1-255 visible ASCII characters; anything else is 400.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[!-~]+$")),
        ))
        .build()
        .into();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in operations(item) {
            op.operation_id = Some(operation_id(method, path));
            op.responses
                .responses
                .entry("default".to_string())
                .or_insert_with(|| error.clone());
            if method != "get" {
                op.parameters.get_or_insert_with(Vec::new).push(key.clone());
            }
        }
    }
}

/// A route group (`routes!(...)` of one path) also served at each of `aliases`, and
/// described there the same: one service reached by every landscape's path.
pub fn aliased<S>(group: UtoipaMethodRouter<S>, aliases: &[&str]) -> UtoipaMethodRouter<S> {
    let (schemas, mut paths, method_router) = group;
    let item = paths
        .paths
        .values()
        .next()
        .cloned()
        .expect("routes! describes one path");
    for alias in aliases {
        paths.paths.insert(alias.to_string(), item.clone());
    }
    (schemas, paths, method_router)
}

/// Finishes `doc`, the description of `routes`, and serves it at `/openapi.json`, rendered
/// once here.
pub fn serve(routes: Router<AppState>, mut doc: Document) -> Router<AppState> {
    finish(&mut doc);
    let json = doc
        .to_json()
        .expect("an OpenAPI document always serializes");
    routes.route(
        "/openapi.json",
        get(document).with_state(Rendered(Bytes::from(json))),
    )
}

/// The rendered document.
#[derive(Clone)]
struct Rendered(Bytes);

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "runtime",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
async fn document(State(Rendered(json)): State<Rendered>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, Paths};

    #[test]
    fn operation_ids_are_method_and_path() {
        assert_eq!(
            operation_id("get", "/auth/verify/{token}"),
            "get_auth_verify_by_token"
        );
        assert_eq!(
            operation_id("get", "/auth/verify-token"),
            "get_auth_verify_token"
        );
        assert_eq!(
            operation_id("post", "/api/v1/airliner/registerUser"),
            "post_api_v1_airliner_registerUser"
        );
        assert_eq!(operation_id("get", "/openapi.json"), "get_openapi_json");
        assert_eq!(operation_id("get", "/contacts/"), "get_contacts_");
        assert_ne!(
            operation_id("get", "/contacts"),
            operation_id("get", "/contacts/")
        );
    }

    #[test]
    fn an_aliased_group_is_described_and_routed_at_every_path() {
        let mut paths = Paths::new();
        paths.paths.insert(
            "/auth/register".into(),
            PathItem::new(HttpMethod::Post, OperationBuilder::new().build()),
        );
        let group: UtoipaMethodRouter = (Vec::new(), paths, axum::routing::post(|| async {}));
        let (_, paths, _) = aliased(group, &["/users/register", "/api/auth/register"]);
        let described: Vec<&str> = paths.paths.keys().map(String::as_str).collect();
        assert_eq!(
            described,
            ["/api/auth/register", "/auth/register", "/users/register"]
        );
        assert!(paths.paths.values().all(|item| item.post.is_some()));
    }

    #[test]
    fn first_given_skips_the_earlier_fields_that_are_not_given() {
        let rule = first_non_null(&["login", "email"], json!({"type": "string"}));
        assert_eq!(
            rule,
            json!({"anyOf": [
                {"required": ["login"], "properties": {"login": {"type": "string"}}},
                {"required": ["email"], "properties": {
                    "login": {"type": "null"}, "email": {"type": "string"}}},
            ]})
        );
    }

    #[test]
    fn finishing_gives_unique_ids_and_the_error_answer() {
        let mut doc = ApiDoc::openapi();
        finish(&mut doc);
        let item = &doc.paths.paths["/openapi.json"];
        let op = item.get.as_ref().expect("GET /openapi.json");
        assert_eq!(op.operation_id.as_deref(), Some("get_openapi_json"));
        assert!(op.responses.responses.contains_key("200"));
        assert!(op.responses.responses.contains_key("default"));
    }
}

//! The OpenAPI description of the table's routes, derived from the compiled rows: parameters
//! typed from the operations' variables, request bodies from the input types, response schemas
//! from the selection sets, and every description from the GraphQL doc comments.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ArrayItems, KnownFormat, ObjectBuilder, Schema,
    SchemaFormat, SchemaType, Type as JsonType,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder,
};

use super::compile::{CompiledRoute, CompiledVar, Shape, ShapeKind};
use super::convert::snake_case;
use super::index::{list_item, named, Kind, SchemaIndex, Type};
use super::row::{Access, Envelope, Method, Source};
use crate::graphql::pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

const JSON: &str = "application/json";

fn types(base: JsonType, nullable: bool) -> SchemaType {
    if nullable {
        SchemaType::Array(vec![base, JsonType::Null])
    } else {
        SchemaType::Type(base)
    }
}

fn items(schema: Schema) -> ArrayItems {
    ArrayItems::RefOrSchema(Box::new(RefOr::T(schema)))
}

fn closed(builder: ObjectBuilder) -> ObjectBuilder {
    builder.additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
}

/// A scalar's JSON Schema.
fn scalar(name: &str, nullable: bool, description: Option<&String>) -> Schema {
    let (base, format) = match name {
        "Int" => (Some(JsonType::Integer), None),
        "Float" => (Some(JsonType::Number), None),
        "Boolean" => (Some(JsonType::Boolean), None),
        "UUID" => (Some(JsonType::String), Some(KnownFormat::Uuid)),
        "DateTime" => (Some(JsonType::String), Some(KnownFormat::DateTime)),
        "String" | "ID" => (Some(JsonType::String), None),
        // JSON and any other custom scalar: any value.
        _ => (None, None),
    };
    let builder = match base {
        Some(base) => ObjectBuilder::new().schema_type(types(base, nullable)),
        None => ObjectBuilder::new().schema_type(SchemaType::AnyValue),
    };
    let builder = match name {
        "Int" => builder.minimum(Some(i32::MIN)).maximum(Some(i32::MAX)),
        _ => builder,
    };
    builder
        .format(format.map(SchemaFormat::KnownFormat))
        .description(description.cloned())
        .into()
}

fn enumeration(values: &[String], nullable: bool, description: Option<&String>) -> Schema {
    let mut all: Vec<serde_json::Value> = values.iter().map(|v| v.as_str().into()).collect();
    if nullable {
        all.push(serde_json::Value::Null);
    }
    ObjectBuilder::new()
        .schema_type(types(JsonType::String, nullable))
        .enum_values(Some(all))
        .description(description.cloned())
        .into()
}

/// The schema of a selected value (responses).
pub fn output(shape: &Shape) -> Schema {
    let description = shape.description.as_ref();
    match &shape.kind {
        ShapeKind::Scalar(name) => scalar(name, shape.nullable, description),
        ShapeKind::Enum(_, values) => enumeration(values, shape.nullable, description),
        ShapeKind::List(item) => ArrayBuilder::new()
            .schema_type(types(JsonType::Array, shape.nullable))
            .items(items(output(item)))
            .description(description.cloned())
            .into(),
        ShapeKind::Object(fields) => {
            let mut builder = closed(ObjectBuilder::new())
                .schema_type(types(JsonType::Object, shape.nullable))
                .description(description.cloned());
            for (key, field) in fields {
                builder = builder.property(key, output(field)).required(key);
            }
            builder.into()
        }
    }
}

/// The schema of an input value (parameters and bodies), with REST names and spellings.
pub fn input(index: &SchemaIndex, ty: &Type, description: Option<&String>) -> Schema {
    if let Some(item) = list_item(ty) {
        return ArrayBuilder::new()
            .schema_type(types(JsonType::Array, ty.nullable))
            .items(items(input(index, item, None)))
            .description(description.cloned())
            .into();
    }
    let name = named(ty);
    let def = index.get(name);
    match def.map(|d| &d.kind) {
        Some(Kind::Enum(values)) => {
            let values: Vec<String> = values.iter().map(|(v, _)| v.to_lowercase()).collect();
            enumeration(
                &values,
                ty.nullable,
                description.or(def.and_then(|d| d.description.as_ref())),
            )
        }
        Some(Kind::Input(fields)) => {
            let mut builder = closed(ObjectBuilder::new())
                .schema_type(types(JsonType::Object, ty.nullable))
                .description(
                    description
                        .or(def.and_then(|d| d.description.as_ref()))
                        .cloned(),
                );
            for field in fields {
                let key = snake_case(&field.name);
                builder =
                    builder.property(&key, input(index, &field.ty, field.description.as_ref()));
                if field.required() {
                    builder = builder.required(&key);
                }
            }
            builder.into()
        }
        _ => scalar(name, ty.nullable, description),
    }
}

fn parameter(
    index: &SchemaIndex,
    var: &CompiledVar,
    place: ParameterIn,
    name: &str,
) -> utoipa::openapi::path::Parameter {
    let required = var.required() && !matches!(place, ParameterIn::Cookie);
    // A path, query or cookie value is there or absent, never JSON `null`: optional parameters
    // say so with `required: false`, and their schemas stay non-null (else generators make
    // `T | None` unions of their own for every filter).
    let mut ty = var.ty.clone();
    ty.nullable = false;
    let mut schema = input(index, &ty, None);
    let mut description = var.description.clone();
    if var.name == "page" {
        schema = ObjectBuilder::new()
            .schema_type(JsonType::Integer)
            .minimum(Some(1))
            .maximum(Some(i32::MAX))
            .into();
        description = Some("Page number, from 1.".into());
    } else if var.name == "pageSize" {
        schema = ObjectBuilder::new()
            .schema_type(JsonType::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_PAGE_SIZE))
            .into();
        description = Some(format!(
            "Rows per page (default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE})."
        ));
        if name == "limit" {
            description = Some("An alias of `page_size`.".into());
        }
    }
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(description)
        .schema(Some(schema))
        .build()
}

fn body(
    index: &SchemaIndex,
    route: &CompiledRoute,
) -> Option<utoipa::openapi::request_body::RequestBody> {
    let mut required = false;
    let schema: Schema = if let Some(var) = route.vars.iter().find(|v| v.source == Source::Body) {
        required = var.required();
        input(index, &var.ty, None)
    } else {
        let fields: Vec<_> = route
            .vars
            .iter()
            .filter(|v| matches!(v.source, Source::BodyField | Source::BodyFieldOrCookie(_)))
            .collect();
        if fields.is_empty() {
            return None;
        }
        let mut builder = closed(ObjectBuilder::new()).schema_type(JsonType::Object);
        for var in fields {
            builder = builder.property(&var.rest, input(index, &var.ty, var.description.as_ref()));
            if var.required() && var.source == Source::BodyField {
                builder = builder.required(&var.rest);
                required = true;
            }
        }
        builder.into()
    };
    let mut description = None;
    if route.row.method == Method::Patch {
        description = Some(
            "Fields absent from the body are not changed; a field sent as `null` is cleared (where it may be null).",
        );
    }
    Some(
        RequestBodyBuilder::new()
            .content(JSON, ContentBuilder::new().schema(Some(schema)).build())
            .required(Some(if required {
                Required::True
            } else {
                Required::False
            }))
            .description(description)
            .build(),
    )
}

/// The schema of the success body, and the component name it is stored under.
fn success_schema(route: &CompiledRoute) -> Option<Schema> {
    let data = output(route.data_shape());
    match route.row.envelope {
        Envelope::Empty => None,
        Envelope::Bare => Some(data),
        Envelope::Data => Some(
            closed(ObjectBuilder::new())
                .schema_type(JsonType::Object)
                .property("data", data)
                .required("data")
                .into(),
        ),
        Envelope::Pages => {
            let mut meta = closed(ObjectBuilder::new())
                .schema_type(JsonType::Object)
                .description(Some("Where this page sits in each list."));
            for (key, _, _) in route.pages.iter().flat_map(|(lists, _)| lists) {
                meta = meta
                    .property(key, Ref::from_schema_name("PageMeta"))
                    .required(key);
            }
            Some(
                closed(ObjectBuilder::new())
                    .schema_type(JsonType::Object)
                    .property("data", data)
                    .property("meta", meta)
                    .property("links", Ref::from_schema_name("PageLinks"))
                    .required("data")
                    .required("meta")
                    .required("links")
                    .into(),
            )
        }
        Envelope::Page => Some(
            closed(ObjectBuilder::new())
                .schema_type(JsonType::Object)
                .property("data", ArrayBuilder::new().items(items(data)))
                .property("meta", Ref::from_schema_name("PageMeta"))
                .property("links", Ref::from_schema_name("PageLinks"))
                .required("data")
                .required("meta")
                .required("links")
                .into(),
        ),
    }
}

/// `{total, page, page_size, total_pages}` and `{self, first, prev, next, last}`.
fn page_components(doc: &mut OpenApi) {
    let int = |d: &str| -> Schema {
        ObjectBuilder::new()
            .schema_type(JsonType::Integer)
            .minimum(Some(0))
            .description(Some(d))
            .into()
    };
    let meta = closed(ObjectBuilder::new())
        .schema_type(JsonType::Object)
        .description(Some("Where this page sits in the whole list."))
        .property("total", int("Rows in the whole list."))
        .property("page", int("This page's number, from 1."))
        .property("page_size", int("Rows per page."))
        .property("total_pages", int("Number of pages (0 for an empty list)."))
        .required("total")
        .required("page")
        .required("page_size")
        .required("total_pages");
    let link = |d: &str, nullable: bool| -> Schema {
        ObjectBuilder::new()
            .schema_type(types(JsonType::String, nullable))
            .description(Some(d))
            .into()
    };
    let links = closed(ObjectBuilder::new())
        .schema_type(JsonType::Object)
        .description(Some(
            "Relative URLs of neighbouring pages, keeping the other query parameters.",
        ))
        .property("self", link("This page.", false))
        .property("first", link("The first page.", false))
        .property("prev", link("The previous page; null on the first.", true))
        .property("next", link("The next page; null on the last.", true))
        .property("last", link("The last page.", false))
        .required("self")
        .required("first")
        .required("prev")
        .required("next")
        .required("last");
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert("PageMeta".into(), RefOr::T(meta.into()));
    components
        .schemas
        .insert("PageLinks".into(), RefOr::T(links.into()));
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build()
}

/// The `Set-Cookie` header of the rows that set or clear the session cookies.
fn session_cookie_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(JsonType::String)))
        .description(Some(
            "Two headers: the HttpOnly cookies `token` (the access token, path `/`) and `refresh_token` (path `/api/v1/auth`); sign-out sends them expired.",
        ))
        .build()
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Adds every compiled row to `doc`.
pub fn describe(doc: &mut OpenApi, index: &SchemaIndex, routes: &[CompiledRoute]) {
    page_components(doc);
    for route in routes {
        let row = &route.row;
        let mut description: Vec<&str> = Vec::new();
        if let Some(d) = &route.root_description {
            description.push(d);
        }
        if !row.notes.is_empty() {
            description.push(row.notes);
        }
        if row.access == Access::Session {
            description.push("Needs a signed-in session: API keys get 403 `SESSION_REQUIRED`.");
        }
        let mut op = OperationBuilder::new()
            .operation_id(Some(lower_first(&route.operation_name)))
            .summary(Some(row.summary))
            .description(Some(description.join("\n\n")))
            .tag(row.tag);
        for var in &route.vars {
            match var.source {
                Source::Path => {
                    op = op.parameter(parameter(index, var, ParameterIn::Path, &var.rest))
                }
                Source::Query => {
                    op = op.parameter(parameter(index, var, ParameterIn::Query, &var.rest));
                    if var.name == "pageSize" {
                        op = op.parameter(parameter(index, var, ParameterIn::Query, "limit"));
                    }
                }
                Source::BodyFieldOrCookie(cookie) => {
                    op = op.parameter(parameter(index, var, ParameterIn::Cookie, cookie));
                }
                Source::Body | Source::BodyField => {}
            }
        }
        op = op.request_body(body(index, route));
        let status = row.status.to_string();
        let mut success = ResponseBuilder::new().description(row.summary);
        if row.sets_cookies {
            success = success.header("Set-Cookie", session_cookie_header());
        }
        op = match success_schema(route) {
            Some(schema) => {
                let component = format!("{}Response", route.operation_name);
                doc.components
                    .get_or_insert_with(Default::default)
                    .schemas
                    .insert(component.clone(), RefOr::T(schema));
                op.response(
                    status,
                    success
                        .content(
                            JSON,
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(component)))
                                .build(),
                        )
                        .build(),
                )
            }
            None => op.response(status, success.build()),
        };
        let mut errors = vec![
            ("400", "Malformed request: unknown query parameter, malformed id or value, body that is not JSON (`BAD_REQUEST`, with `details`)"),
            ("401", "No valid credential, or wrong email or password (`UNAUTHENTICATED`)"),
            ("403", "Not allowed (`FORBIDDEN`), an API key where a session is needed (`SESSION_REQUIRED`), or an admin of an org that requires MFA who has not enabled it (`MFA_REQUIRED`)"),
            ("404", "Not found, or another org's (`NOT_FOUND`)"),
        ];
        if row.method != Method::Get {
            errors.push(("409", "Conflicts with the current state (`CONFLICT`)"));
        }
        if body(index, route).is_some() {
            errors.push(("413", "Body too large (`PAYLOAD_TOO_LARGE`)"));
        }
        errors.push(("422", "Invalid input (`VALIDATION_FAILED`, with `details`)"));
        for (code, text) in errors {
            op = op.response(code, error_response(text));
        }
        op = op.response("429", error_response("Too many requests (`RATE_LIMITED`)"));
        match row.access {
            Access::Public => {}
            Access::Any => {
                for scheme in ["bearer_auth", "api_key", "cookie_auth"] {
                    op = op.security(SecurityRequirement::new::<_, [&str; 0], &str>(scheme, []));
                }
            }
            Access::Session => {
                for scheme in ["bearer_auth", "cookie_auth"] {
                    op = op.security(SecurityRequirement::new::<_, [&str; 0], &str>(scheme, []));
                }
            }
        }
        let method = match row.method {
            Method::Get => HttpMethod::Get,
            Method::Post => HttpMethod::Post,
            Method::Put => HttpMethod::Put,
            Method::Patch => HttpMethod::Patch,
            Method::Delete => HttpMethod::Delete,
        };
        doc.paths
            .add_path_operation(row.path, vec![method], op.build());
    }
}

/// Paths served outside the authentication and rate-limit middleware (`http::router`'s probes):
/// their answers carry no `RateLimit-*` headers.
const UNLIMITED_PATHS: &[&str] = &["/health", "/ready", "/health/services"];

fn integer_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(JsonType::Integer)
                .minimum(Some(0)),
        ))
        .description(Some(description))
        .build()
}

/// Describes the headers the middleware puts on answers, on every operation of `doc` (the
/// table's rows and the hand-written routes alike): `X-Request-ID` everywhere, the
/// `RateLimit-*` budget on every answer that passed the rate limiter, `Retry-After` on 429.
/// They are components, referenced from each response.
pub fn describe_headers(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    let headers = [
        (
            "X-Request-ID",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(JsonType::String)))
                .description(Some(
                    "The request's id: the client's `X-Request-ID` when it is sane, else a new UUID. Every log line of the request carries it.",
                ))
                .build(),
        ),
        (
            "RateLimit-Limit",
            integer_header("Requests allowed to this credential (or this IP, anonymous or with a credential that failed) per window; on the login routes, login attempts allowed to this IP per 15 minutes."),
        ),
        (
            "RateLimit-Remaining",
            integer_header("Requests left in the current window."),
        ),
        (
            "RateLimit-Reset",
            integer_header("Seconds until the current window ends."),
        ),
        (
            "Retry-After",
            integer_header("Seconds to wait before trying again."),
        ),
    ];
    for (name, header) in headers {
        components.headers.insert(name.into(), RefOr::T(header));
    }
    let reference = |name: &str| RefOr::Ref(Ref::new(format!("#/components/headers/{name}")));
    for (path, item) in doc.paths.paths.iter_mut() {
        let limited = !UNLIMITED_PATHS.contains(&path.as_str());
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                let mut names = vec!["X-Request-ID"];
                if limited {
                    names.extend(["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]);
                }
                if status == "429" {
                    names.push("Retry-After");
                }
                for name in names {
                    response.headers.insert(name.into(), reference(name));
                }
            }
        }
    }
}

/// Gives the upload's 200 and 202 answers (`POST /api/v1/ingest`, hand-written) their body:
/// `{data, links}` where `data` is what `scan_row` (`GET /api/v1/scans/{id}`) answers, and the
/// `Location` of the scan.
pub fn describe_upload_answer(doc: &mut OpenApi, scan_row: &CompiledRoute) {
    let link = |d: &str| -> Schema {
        ObjectBuilder::new()
            .schema_type(JsonType::String)
            .description(Some(d))
            .into()
    };
    let links = closed(ObjectBuilder::new())
        .schema_type(JsonType::Object)
        .property("self", link("The scan (`GET /api/v1/scans/{id}`)."))
        .property("events", link("Its progress as Server-Sent Events."))
        .property("raw", link("The report as uploaded."))
        .required("self")
        .required("events")
        .required("raw");
    let body = closed(ObjectBuilder::new())
        .schema_type(JsonType::Object)
        .description(Some(
            "The queued scan, as `GET /api/v1/scans/{id}` shows it, and where to follow it.",
        ))
        .property("data", output(scan_row.data_shape()))
        .property("links", links)
        .required("data")
        .required("links");
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .insert("ScanAcceptedResponse".into(), RefOr::T(body.into()));
    let Some(upload) = doc
        .paths
        .paths
        .get_mut(super::streams::UPLOAD_PATH)
        .and_then(|item| item.post.as_mut())
    else {
        return;
    };
    for status in ["200", "202"] {
        if let Some(RefOr::T(response)) = upload.responses.responses.get_mut(status) {
            response.content.insert(
                JSON.into(),
                RefOr::T(
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ScanAcceptedResponse")))
                        .build(),
                ),
            );
            response.headers.insert(
                "Location".into(),
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(JsonType::String)))
                        .description(Some("The scan's URL (`/api/v1/scans/{id}`)."))
                        .build(),
                ),
            );
        }
    }
}

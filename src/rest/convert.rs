//! REST ⇄ GraphQL values: snake_case keys, lowercase enum spellings, and typed coercion of path,
//! query and body input at the edge, so a bad parameter is reported by its REST name.
//!
//! Null and absent stay distinct: an absent body field is not given to GraphQL at all (the
//! resolver sees "unchanged"), an explicit `null` is passed as `null` (the resolver sees "clear").

use async_graphql::Value as ConstValue;
use serde_json::{Map, Value as Json};

use super::compile::{Shape, ShapeKind};
use super::index::{list_item, named, Kind, SchemaIndex, Type};
use crate::error::FieldError;

/// `expiresAt` → `expires_at`, `API_KEY` → `api_key`.
pub fn snake_case(name: &str) -> String {
    if name.chars().all(|c| !c.is_ascii_lowercase()) {
        return name.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrites a validation error's field path (`input.expiresAt`) into REST spelling.
pub fn rest_field_path(field: &str) -> String {
    field
        .split('.')
        .map(snake_case)
        .collect::<Vec<_>>()
        .join(".")
}

/// Collects what is wrong with the input, by REST name.
#[derive(Default, Debug)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn enum_values(index: &SchemaIndex, name: &str) -> Option<Vec<String>> {
    match &index.get(name)?.kind {
        Kind::Enum(values) => Some(values.iter().map(|(v, _)| v.clone()).collect()),
        _ => None,
    }
}

fn enum_from(
    index: &SchemaIndex,
    name: &str,
    raw: &str,
    at: &str,
    problems: &mut Problems,
) -> Json {
    let values = enum_values(index, name).unwrap_or_default();
    match values.iter().find(|v| v.to_lowercase() == raw) {
        Some(v) => Json::String(v.clone()),
        None => {
            let allowed: Vec<_> = values.iter().map(|v| v.to_lowercase()).collect();
            problems.add(at, format!("must be one of {}", allowed.join(", ")));
            Json::Null
        }
    }
}

/// Checks a scalar given as text (path, query string, or a JSON string) and returns its
/// GraphQL JSON form.
fn scalar_from_str(scalar: &str, raw: &str, at: &str, problems: &mut Problems) -> Json {
    let mut bad = |what: &str| {
        problems.add(at, format!("must be {what}"));
        Json::Null
    };
    match scalar {
        "Int" => raw
            .parse::<i32>()
            .map(Json::from)
            .unwrap_or_else(|_| bad("an integer")),
        "Float" => raw
            .parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Json::Number))
            .unwrap_or_else(|| bad("a number")),
        "Boolean" => match raw {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => bad("true or false"),
        },
        "UUID" => match uuid::Uuid::parse_str(raw) {
            Ok(id) => Json::String(id.to_string()),
            Err(_) => bad("a UUID"),
        },
        "DateTime" => match chrono::DateTime::parse_from_rfc3339(raw) {
            Ok(_) => Json::String(raw.to_string()),
            Err(_) => bad("an RFC 3339 date-time, e.g. 2025-01-31T12:00:00Z"),
        },
        _ => Json::String(raw.to_string()),
    }
}

/// Coerces path or query strings (several for a list) into the variable's GraphQL JSON.
pub fn from_strings(
    index: &SchemaIndex,
    ty: &Type,
    raw: &[String],
    at: &str,
    problems: &mut Problems,
) -> Json {
    if let Some(item) = list_item(ty) {
        return Json::Array(
            raw.iter()
                .map(|r| from_strings(index, item, std::slice::from_ref(r), at, problems))
                .collect(),
        );
    }
    let [one] = raw else {
        problems.add(at, "may be given only once");
        return Json::Null;
    };
    let name = named(ty);
    if enum_values(index, name).is_some() {
        enum_from(index, name, one, at, problems)
    } else {
        scalar_from_str(name, one, at, problems)
    }
}

/// Coerces a JSON body value into the variable's GraphQL JSON (snake_case keys → GraphQL names,
/// REST enum spellings → GraphQL's), reporting every problem by its REST path.
pub fn from_json(
    index: &SchemaIndex,
    ty: &Type,
    value: &Json,
    at: &str,
    problems: &mut Problems,
) -> Json {
    if value.is_null() {
        if !ty.nullable {
            problems.add(at, "must not be null");
        }
        return Json::Null;
    }
    if let Some(item) = list_item(ty) {
        return match value {
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| from_json(index, item, v, &format!("{at}[{i}]"), problems))
                    .collect(),
            ),
            // GraphQL's input coercion: a single value where a list is expected is a list of one.
            single => Json::Array(vec![from_json(index, item, single, at, problems)]),
        };
    }
    let name = named(ty);
    let kind = index.get(name).map(|d| &d.kind);
    match (kind, value) {
        (Some(Kind::Enum(_)), Json::String(s)) => enum_from(index, name, s, at, problems),
        (Some(Kind::Enum(_)), _) => {
            problems.add(at, "must be a string");
            Json::Null
        }
        (Some(Kind::Input(fields)), Json::Object(given)) => {
            let mut out = Map::new();
            for (key, v) in given {
                match fields.iter().find(|f| snake_case(&f.name) == *key) {
                    Some(def) => {
                        let coerced = from_json(index, &def.ty, v, &join(at, key), problems);
                        out.insert(def.name.clone(), coerced);
                    }
                    None => problems.add(&join(at, key), "is not a known field"),
                }
            }
            for def in fields.iter().filter(|f| f.required()) {
                if !given.contains_key(&snake_case(&def.name)) {
                    problems.add(&join(at, &snake_case(&def.name)), "is required");
                }
            }
            Json::Object(out)
        }
        (Some(Kind::Input(_)), _) => {
            problems.add(if at.is_empty() { "body" } else { at }, "must be an object");
            Json::Null
        }
        (_, v) => match (name, v) {
            ("Int", Json::Number(n)) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => {
                v.clone()
            }
            ("Int", _) => {
                problems.add(at, "must be an integer");
                Json::Null
            }
            ("Float", Json::Number(_))
            | ("Boolean", Json::Bool(_))
            | ("String", Json::String(_)) => v.clone(),
            ("ID", Json::String(_) | Json::Number(_)) => v.clone(),
            ("UUID" | "DateTime", Json::String(s)) => scalar_from_str(name, s, at, problems),
            ("Float", _)
            | ("Boolean", _)
            | ("String", _)
            | ("ID", _)
            | ("UUID", _)
            | ("DateTime", _) => {
                problems.add(at, format!("must be {}", json_kind(name)));
                Json::Null
            }
            _ => v.clone(),
        },
    }
}

fn json_kind(scalar: &str) -> &'static str {
    match scalar {
        "Float" => "a number",
        "Boolean" => "true or false",
        "UUID" => "a UUID string",
        "DateTime" => "an RFC 3339 date-time string",
        _ => "a string",
    }
}

/// Rewrites a GraphQL result into REST spelling in place: enum values become lowercase
/// strings (`API_KEY` → `api_key`). Keys are already REST names (the operation's aliases).
/// Works on the executor's own value, so the answer is serialized once, without a second tree.
pub fn to_rest(shape: &Shape, value: &mut ConstValue) {
    match (&shape.kind, value) {
        (ShapeKind::Enum(..), value) => {
            if let ConstValue::Enum(name) = value {
                *value = ConstValue::String(name.to_ascii_lowercase());
            }
        }
        (ShapeKind::List(item), ConstValue::List(items)) => {
            for v in items {
                to_rest(item, v);
            }
        }
        (ShapeKind::Object(fields), ConstValue::Object(map)) => {
            for (key, sub) in fields {
                if let Some(v) = map.get_mut(key.as_str()) {
                    to_rest(sub, v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case() {
        assert_eq!(snake_case("expiresAt"), "expires_at");
        assert_eq!(snake_case("pageSize"), "page_size");
        assert_eq!(snake_case("API_KEY"), "api_key");
        assert_eq!(snake_case("WRITE"), "write");
        assert_eq!(snake_case("id"), "id");
        assert_eq!(rest_field_path("input.expiresAt"), "input.expires_at");
    }
}

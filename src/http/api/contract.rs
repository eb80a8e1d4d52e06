//! The OpenAPI document made to say exactly what the server does.
//!
//! utoipa builds the document from the handlers' annotations; this module finishes it
//! with what the annotations cannot say or would say many times over:
//!
//! - **Statuses that come from shared parts**, added to every operation they apply to:
//!   401 from the bearer check (every operation); 400, 413, 415 and 422 from the JSON
//!   body extractor ([`crate::http::extract::ApiJson`]: not JSON, too large, not
//!   `application/json`, the wrong shape); 404 from a path parameter naming nothing.
//! - **Errors are `application/problem+json`** (RFC 9457), never `application/json`.
//! - **Request bodies**: required where the handler requires one; optional where the
//!   handler reads an empty body as `{}` (publish, send a digest now).
//! - **Field rules** as strict as the domain's parsers (`crate::domain`): slugs, text
//!   lengths and control characters (after the trimming the parsers do), language
//!   tags, time zones, enums, times, URLs, array sizes; `additionalProperties: false`
//!   where the request type refuses unknown fields.
//!
//! `scripts/contract.sh` runs schemathesis against the served document to check that
//! the two agree; the tests in `tests/api/api_errors.rs` check its structure.

use crate::domain::MAX_TRANSLATIONS;
use serde_json::{Map, Value, json};

/// Operations whose body may be left out (an empty body reads as `{}`).
const OPTIONAL_BODIES: &[(&str, &str)] = &[
    ("/api/v1/items/{id}/publish", "post"),
    ("/api/v1/lists/{slug}/digests", "post"),
];

/// Characters `Text::parse` trims from both ends: Unicode White_Space, as Rust's
/// `str::trim` reads it (a JSON Schema `\s` would differ on U+001C..U+001F).
const WS: &str = r"\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// Control characters (Unicode Cc), refused by `Text::parse` once trimmed.
const CC: &str = r"\x00-\x1F\x7F-\x9F";

/// The pattern of a `Text::parse(s, max, required, multiline)` field.
fn text_pattern(max: usize, required: bool, multiline: bool) -> String {
    // Inside: any character but a control one (tab and LF allowed on several lines;
    // CR too, since line ends are made LF before the check). Ends: not white space.
    let inner = if multiline {
        r"[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]".to_owned()
    } else {
        format!("[^{CC}]")
    };
    let edge = format!("[^{CC}{WS}]");
    let core = match max {
        0 => String::new(),
        1 => edge.clone(),
        _ => format!("{edge}(?:{inner}{{0,{}}}{edge})?", max - 2),
    };
    let core = if required {
        core
    } else {
        format!("(?:{core})?")
    };
    format!("^[{WS}]*{core}[{WS}]*$")
}

/// A slug: `Slug::parse`.
fn slug() -> Value {
    json!({"type": "string", "pattern": "^[a-z0-9]+(?:-[a-z0-9]+)*$", "maxLength": 100})
}

fn text(max: usize, required: bool, multiline: bool) -> Value {
    if max > LONG_TEXT {
        // A bounded repeat this long is more than regex engines take: the length
        // goes to maxLength (it then counts the white space trimmed at the ends too).
        let open = text_pattern(LONG_TEXT, required, multiline)
            .replace(&format!("{{0,{}}}", LONG_TEXT - 2), "*");
        return json!({"type": "string", "pattern": open, "maxLength": max});
    }
    json!({"type": "string", "pattern": text_pattern(max, required, multiline)})
}

/// Longer text limits are written as maxLength.
const LONG_TEXT: usize = 10_000;

/// `Language::parse`: a BCP 47 tag by shape.
fn language() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$"})
}

/// `Names::parse`: language tags to names as `name` takes them (one tag spelt in two
/// cases is refused too, which a schema cannot say).
fn names() -> Value {
    json!({
        "type": "object",
        "propertyNames": language(),
        "additionalProperties": text(200, true, false),
    })
}

/// `TimeZone::parse`: every IANA name chrono-tz knows.
fn timezone() -> Value {
    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    json!({"type": "string", "enum": names})
}

/// `parse_instant`: RFC 3339 with an offset.
fn instant() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// `WebUrl::parse`: an absolute http(s) URL with a host, 2000 bytes at most; here in
/// the plain form (host names, an optional port and path, no query).
fn web_url() -> Value {
    let label = "[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    json!({"type": "string", "maxLength": 2000, "pattern":
        format!(r"^https?://{label}(?:\.{label})*(?::[0-9]{{1,4}})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)?$")})
}

fn one_of(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn nullable(mut schema: Value) -> Value {
    if let Some(t) = schema
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        schema["type"] = json!([t, "null"]);
    }
    if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
        values.push(Value::Null);
    }
    schema
}

/// The rules of each request body's fields, as the domain parsers apply them.
fn request_fields() -> Vec<(&'static str, &'static str, Value)> {
    let categories = json!({"type": "array", "items": slug(), "minItems": 1, "maxItems": 20});
    let tags = json!({"type": "array", "items": text(100, true, false), "maxItems": 50});
    // `parse_event_time`: RFC 3339 with an offset, or a local date-time (days up to
    // 28 here, so that every date written exists).
    let event_time = json!({"type": "string", "pattern": concat!(
        r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])T(?:[01][0-9]|2[0-3]):[0-5][0-9]",
        r"(?::[0-5][0-9](?:(?:\.[0-9]{1,9})?(?:Z|z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?)?$")});
    vec![
        ("ItemRequest", "slug", nullable(slug())),
        ("ItemRequest", "title", text(300, true, false)),
        ("ItemRequest", "summary", text(2000, false, true)),
        ("ItemRequest", "body", text(200_000, false, true)),
        ("ItemRequest", "author", text(200, false, false)),
        ("ItemRequest", "org_unit", text(200, false, false)),
        ("ItemRequest", "language", nullable(language())),
        ("ItemRequest", "categories", categories),
        ("ItemRequest", "tags", tags),
        (
            "ItemRequest",
            "status",
            nullable(one_of(&["draft", "published"])),
        ),
        ("ItemRequest", "published_at", nullable(instant())),
        ("EventRequest", "starts_at", event_time.clone()),
        ("EventRequest", "ends_at", nullable(event_time)),
        ("EventRequest", "timezone", timezone()),
        (
            "EventRequest",
            "venue",
            nullable(blank_or(text(300, true, false))),
        ),
        ("EventRequest", "online_url", nullable(blank_or(web_url()))),
        (
            "EventRequest",
            "mode",
            one_of(&["in_person", "online", "hybrid"]),
        ),
        (
            "EventRequest",
            "mode_text",
            nullable(blank_or(text(300, true, false))),
        ),
        (
            "ItemRequest",
            "translations",
            json!({"type": "array", "maxItems": MAX_TRANSLATIONS,
                "items": {"$ref": "#/components/schemas/VersionRequest"}}),
        ),
        ("VersionRequest", "language", language()),
        ("VersionRequest", "title", text(300, true, false)),
        ("VersionRequest", "summary", text(2000, false, true)),
        ("VersionRequest", "body", text(200_000, false, true)),
        (
            "VersionRequest",
            "venue",
            nullable(blank_or(text(300, true, false))),
        ),
        (
            "VersionRequest",
            "mode_text",
            nullable(blank_or(text(300, true, false))),
        ),
        ("VersionWriteRequest", "title", text(300, true, false)),
        ("VersionWriteRequest", "summary", text(2000, false, true)),
        ("VersionWriteRequest", "body", text(200_000, false, true)),
        (
            "VersionWriteRequest",
            "venue",
            nullable(blank_or(text(300, true, false))),
        ),
        (
            "VersionWriteRequest",
            "mode_text",
            nullable(blank_or(text(300, true, false))),
        ),
        ("PublishRequest", "at", nullable(instant())),
        ("CategoryRequest", "slug", slug()),
        ("CategoryRequest", "name", text(200, true, false)),
        ("CategoryRequest", "description", text(2000, false, true)),
        ("CategoryRequest", "names", names()),
        ("CategoryRequest", "parent", nullable(slug())),
        ("TokenRequest", "name", text(200, true, false)),
        ("SendRequest", "period", nullable(iso_week())),
        ("PartnerRequest", "name", text(200, true, false)),
        ("PartnerRequest", "country", text(100, false, false)),
        ("PartnerRequest", "names", names()),
        ("PartnerRequest", "website", nullable(blank_or(web_url()))),
        ("PartnerRequest", "timezone", nullable(timezone())),
        ("PartnerRequest", "language", nullable(language())),
        ("SubscriberRequest", "email", email()),
        ("SubscriberRequest", "name", text(200, false, false)),
        ("SubscriberRequest", "language", nullable(language())),
        ("SubscriberRequest", "timezone", nullable(timezone())),
        ("SubscriberRequest", "attributes", attributes()),
        ("SubscriberRequest", "list", nullable(slug())),
        (
            "SubscriberRequest",
            "consent_source",
            nullable(text(300, true, false)),
        ),
        ("SubscriberRequest", "partner_id", nullable(id())),
        (
            "StatusRequest",
            "status",
            one_of(&["pending", "confirmed", "unsubscribed", "bounced", "blocked"]),
        ),
        ("StatusRequest", "reason", text(300, false, false)),
        ("ListRequest", "slug", slug()),
        ("ListRequest", "name", text(200, true, false)),
        ("ListRequest", "description", text(2000, false, true)),
        ("ListRequest", "names", names()),
        (
            "ListRequest",
            "categories",
            json!({"type": "array", "items": slug()}),
        ),
        (
            "ListRequest",
            "opt_in",
            nullable(one_of(&["double", "single"])),
        ),
        (
            "ListRequest",
            "visibility",
            nullable(one_of(&["public", "private"])),
        ),
        ("ListRequest", "schedule_cron", nullable(cron())),
        ("ListRequest", "schedule_timezone", nullable(timezone())),
        (
            "ListRequest",
            "min_items",
            nullable(json!({"type": "integer", "minimum": 1, "maximum": 1000})),
        ),
        (
            "ListRequest",
            "grace_minutes",
            nullable(json!({"type": "integer", "minimum": 0, "maximum": 20160})),
        ),
        (
            "ListRequest",
            "schedule_delivery",
            nullable(one_of(&["list_zone", "reader_zone"])),
        ),
        ("MemberRequest", "subscriber_id", id()),
        (
            "MemberRequest",
            "consent_source",
            nullable(text(300, true, false)),
        ),
    ]
}

/// A numeric id: positive, 64 bits.
fn id() -> Value {
    json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX})
}

/// `Email::parse`, in the common form it accepts (no dots before the @).
fn email() -> Value {
    json!({"type": "string", "maxLength": 254, "pattern":
        r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"})
}

/// A subscriber's attributes: at most 50, names of 1 to 100 bytes and values of at
/// most 1000 characters, no control characters.
fn attributes() -> Value {
    json!({
        "type": "object",
        "maxProperties": 50,
        "propertyNames": {"pattern": r"^[\x20-\x7E]{1,100}$"},
        "additionalProperties": {"type": "string", "pattern": format!("^[^{CC}]{{0,1000}}$")}
    })
}

/// A digest schedule: cron with seconds, in the common weekly form.
fn cron() -> Value {
    json!({"type": "string", "pattern":
        r"^0 [0-5]?[0-9] (?:[01]?[0-9]|2[0-3]) \* \* (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)$"})
}

/// Empty (or only white space, read as none) or the given rule.
fn blank_or(schema: Value) -> Value {
    let mut s = schema;
    if let Some(p) = s.get("pattern").and_then(Value::as_str) {
        let inner = p.trim_start_matches('^').trim_end_matches('$').to_owned();
        s["pattern"] = json!(format!("^(?:[{WS}]*|{inner})$"));
    }
    s
}

/// The rules of query and path parameters, by name (path parameters) or by path
/// and name (query parameters).
fn parameter_rule(path: &str, name: &str, location: &str) -> Option<Value> {
    let page = json!({"type": "integer", "minimum": 1, "maximum": u32::MAX});
    let per_page = json!({"type": "integer", "minimum": 1, "maximum": 200});
    if location == "path" {
        return match name {
            "id" | "subscriber_id" => Some(id()),
            "slug" => Some(slug()),
            "period" => Some(iso_week()),
            "language" => Some(language()),
            _ => None,
        };
    }
    Some(match (path, name) {
        (_, "list") => slug(),
        ("/api/v1/items", "category") => slug(),
        ("/api/v1/items", "status") => one_of(&["draft", "published"]),
        ("/api/v1/subscribers", "status") => {
            one_of(&["pending", "confirmed", "unsubscribed", "bounced", "blocked"])
        }
        ("/api/v1/subscribers", "partner_id") => {
            json!({"type": "integer", "format": "int64"})
        }
        ("/api/v1/subscribers" | "/api/v1/items", "q") => json!({"type": "string", "pattern":
            format!(r"^[{WS}]*(?:[^{WS}](?:[\s\S]{{0,198}}[^{WS}])?)?[{WS}]*$")}),
        (_, "page") => page,
        (_, "per_page") => per_page,
        (_, "subscriber") => email(),
        (_, "language") => language(),
        (_, "format") => one_of(&["html", "text"]),
        (_, "mode") => one_of(&["good_rows", "all_or_nothing"]),
        (_, "dry_run") => one_of(&["true", "false"]),
        (_, "consent_source") => text(300, true, false),
        _ => return None,
    })
}

/// `IsoWeek::parse`: `YYYY-Www`.
/// `Event::validate`: an online or hybrid event needs an online URL, an in-person or
/// hybrid one a venue (white space alone counts as none). The event is written as one
/// of three closed schemas, one per mode, each made from `EventRequest`.
fn event_variants(schemas: &mut Map<String, Value>) -> Option<Value> {
    let base = schemas.get("EventRequest")?.clone();
    let mut refs = Vec::new();
    for (name, mode, needs) in [
        ("EventInPerson", "in_person", &["venue"][..]),
        ("EventOnline", "online", &["online_url"]),
        ("EventHybrid", "hybrid", &["venue", "online_url"]),
    ] {
        let mut variant = base.clone();
        variant["description"] = json!(format!("An event of mode `{mode}`."));
        variant["properties"]["mode"] = json!({"type": "string", "const": mode});
        for field in needs {
            variant["properties"][*field] = match *field {
                "venue" => text(300, true, false),
                _ => web_url(),
            };
        }
        let mut required: Vec<Value> = variant["required"].as_array().cloned().unwrap_or_default();
        required.extend(needs.iter().map(|f| json!(f)));
        variant["required"] = Value::Array(required);
        schemas.insert(name.to_owned(), variant);
        refs.push(json!({"$ref": format!("#/components/schemas/{name}")}));
    }
    refs.push(json!({"type": "null"}));
    Some(json!({"oneOf": refs}))
}

/// Years 1900 to 9999; week 53, which only some years have, is left out.
fn iso_week() -> Value {
    json!({"type": "string", "pattern": "^(?:19[0-9]{2}|[2-9][0-9]{3})-W(?:0[1-9]|[1-4][0-9]|5[0-2])$"})
}

/// The CSV of an import: a header line with an `email` column (any case, spaces
/// around it), then any rows (bad ones are reported, not refused). The header is
/// shown here without quotes.
fn csv_upload() -> Value {
    json!({"type": "string", "pattern":
        r"^\uFEFF?(?:[^\r\n\x22,]*,)*[ \t]*[Ee][Mm][Aa][Ii][Ll][ \t]*(?:,[^\r\n\x22,]*)*(?:(?:\r\n?|\n)[\s\S]*)?$"})
}

/// Finishes the document utoipa built; see the module's description.
pub fn finish(doc: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    let problem =
        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                finish_operation(path, method, op, &problem);
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        let mut rules = request_fields();
        rules.retain(|(schema, _, _)| *schema == "EventRequest");
        if let Some(event) = schemas.get_mut("EventRequest") {
            event["additionalProperties"] = Value::Bool(false);
        }
        for (_, field, rule) in rules {
            if let Some(props) = schemas
                .get_mut("EventRequest")
                .and_then(|s| s.get_mut("properties"))
            {
                props[field] = rule;
            }
        }
        if let Some(event) = event_variants(schemas) {
            schemas.remove("EventRequest");
            if let Some(item) = schemas.get_mut("ItemRequest") {
                item["properties"]["event"] = event;
            }
        }
        for (schema, field, rule) in request_fields() {
            let Some(schema) = schemas.get_mut(schema).and_then(Value::as_object_mut) else {
                continue;
            };
            // Every request type refuses unknown fields (`deny_unknown_fields`).
            schema.insert("additionalProperties".into(), Value::Bool(false));
            if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
                let mut rule = rule;
                if let Some(d) = props.get(field).and_then(|p| p.get("description")) {
                    rule["description"] = d.clone();
                }
                props.insert(field.to_owned(), rule);
            }
        }
    }
    doc
}

fn finish_operation(path: &str, method: &str, op: &mut Value, problem: &Value) {
    let has_path_params = path.contains('{');
    let mut has_query = false;
    let mut names_resource = false;
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params.iter_mut() {
            let name = p["name"].as_str().unwrap_or_default().to_owned();
            let location = p["in"].as_str().unwrap_or_default().to_owned();
            has_query |= location == "query";
            names_resource |= location == "query" && (name == "list" || name == "category");
            if let Some(rule) = parameter_rule(path, &name, &location) {
                p["schema"] = rule;
            }
        }
    }
    let json_body = op
        .pointer("/requestBody/content/application~1json")
        .is_some();
    if let Some(body) = op.get_mut("requestBody").and_then(Value::as_object_mut) {
        let optional = OPTIONAL_BODIES.contains(&(path, method));
        body.insert("required".into(), Value::Bool(!optional));
    }
    if let Some(csv) = op.pointer_mut("/requestBody/content/text~1csv") {
        csv["schema"] = csv_upload();
    }
    let responses = op
        .as_object_mut()
        .map(|o| {
            o.entry("responses")
                .or_insert_with(|| Value::Object(Map::new()))
        })
        .and_then(Value::as_object_mut);
    let Some(responses) = responses else {
        return;
    };
    let mut add = |status: &str, what: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| json!({"description": what}));
    };
    add("401", "missing or invalid bearer token");
    if has_path_params {
        add("404", "nothing has this id or slug");
    }
    if has_query {
        add(
            "400",
            "the query string cannot be read (a parameter given twice)",
        );
        add("422", "a query parameter is invalid; see errors");
    }
    if names_resource {
        add("404", "no list or category has the slug given");
    }

    if json_body {
        add("400", "the body is not JSON");
        add("413", "the body is larger than NEWSDESK_MAX_BODY_BYTES");
        add("415", "the body is not application/json");
        add(
            "422",
            "a field is missing, of the wrong type or invalid; see errors",
        );
    }
    for (status, response) in responses.iter_mut() {
        let Some(r) = response.as_object_mut() else {
            continue;
        };
        if status.starts_with('4') || status.starts_with('5') {
            r.insert("content".into(), problem.clone());
        }
        if r.get("description").and_then(Value::as_str) == Some("") {
            r.insert("description".into(), json!(describe(status)));
        }
    }
}

/// What a status means in this API, for answers the handlers left undescribed.
fn describe(status: &str) -> &'static str {
    match status {
        "200" => "done",
        "201" => "created",
        "204" => "done; no content",
        "401" => "missing or invalid bearer token",
        "404" => "nothing has this id or slug",
        "409" => "refused: it clashes with what is stored (see detail)",
        "413" => "the body is larger than the limit",
        "415" => "the body is not of the media type given",
        "422" => "a field is invalid; see errors",
        _ => "see detail",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn document() -> Value {
        crate::http::api::router().1
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
        out
    }

    #[test]
    fn text_patterns_read_as_the_parser_does() {
        assert_eq!(
            text_pattern(3, true, false),
            format!("^[{WS}]*[^{CC}{WS}](?:[^{CC}]{{0,1}}[^{CC}{WS}])?[{WS}]*$")
        );
        assert!(text_pattern(10, false, true).contains("(?:"));
        let long = text(200_000, false, true);
        assert_eq!(long["maxLength"], 200_000);
        assert!(!long["pattern"].as_str().unwrap().contains("{0,"));
    }

    #[test]
    fn the_document_is_openapi_3_1_in_structure() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        // Every reference names a schema that is there.
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"").skip(1) {
            let target = &r[..r.find('"').unwrap()];
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or(target);
            assert!(schemas.contains_key(name), "dangling $ref {target}");
        }
        let mut ids = BTreeSet::new();
        let ops = operations(&doc);
        assert!(ops.len() >= 41, "{} operations", ops.len());
        for (path, method, op) in &ops {
            let what = format!("{method} {path}");
            assert!(
                ["get", "put", "post", "delete"].contains(&method.as_str()),
                "{what}"
            );
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "{what}: operationId twice"
            );
            assert_eq!(op["security"], json!([{"bearer": []}]), "{what}");
            // Every path parameter is declared, required, with a schema.
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .inspect(|p| {
                            assert_eq!(p["required"], true, "{what}");
                            assert!(p["schema"]["type"].is_string(), "{what}");
                        })
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let in_template: BTreeSet<&str> = path
                .split('{')
                .skip(1)
                .map(|p| &p[..p.find('}').unwrap()])
                .collect();
            assert_eq!(declared, in_template, "{what}");
            for p in op["parameters"].as_array().into_iter().flatten() {
                assert!(p["in"] == "path" || p["in"] == "query", "{what}: {p}");
            }
            // Every answer is described; every error is problem+json.
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("401"), "{what}");
            assert!(responses.keys().any(|s| s.starts_with('2')), "{what}");
            for (status, r) in responses {
                assert!(r["description"].is_string(), "{what} {status}");
                if status.starts_with('4') || status.starts_with('5') {
                    let types: Vec<&String> = r["content"].as_object().unwrap().keys().collect();
                    assert_eq!(types, ["application/problem+json"], "{what} {status}");
                }
            }
            if let Some(body) = op.get("requestBody") {
                let optional = OPTIONAL_BODIES.contains(&(path.as_str(), method.as_str()));
                assert_eq!(body["required"], !optional, "{what}");
                if body["content"].get("application/json").is_some() {
                    for status in ["400", "413", "415", "422"] {
                        assert!(responses.contains_key(status), "{what} lacks {status}");
                    }
                }
            }
        }
    }

    #[test]
    fn request_types_refuse_unknown_fields_and_carry_the_domain_rules() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for (schema, field, _) in request_fields() {
            // The event is written as one schema per mode.
            let schema = if schema == "EventRequest" {
                "EventHybrid"
            } else {
                schema
            };
            assert_eq!(schemas[schema]["additionalProperties"], false, "{schema}");
            let rule = &schemas[schema]["properties"][field];
            assert!(
                rule.get("pattern").is_some()
                    || rule.get("enum").is_some()
                    || rule.get("const").is_some()
                    || rule.get("format").is_some()
                    || rule.get("minimum").is_some()
                    || rule.get("items").is_some()
                    || rule.get("additionalProperties").is_some(),
                "{schema}.{field} has no rule: {rule}"
            );
        }
        assert_eq!(
            schemas["ItemRequest"]["required"],
            json!(["title", "categories"])
        );
        assert!(schemas.get("EventRequest").is_none());
        assert_eq!(
            schemas["EventOnline"]["required"],
            json!(["starts_at", "timezone", "mode", "online_url"])
        );
        assert_eq!(
            schemas["EventInPerson"]["properties"]["mode"]["const"],
            "in_person"
        );
        assert_eq!(
            schemas["ItemRequest"]["properties"]["event"]["oneOf"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }
}

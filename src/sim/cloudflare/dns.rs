//! Zones (read-only: they come from the config) and DNS records
//! (`/zones`, `/zones/{zone_id}/dns_records[/{id}]`).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::envelope::{ApiError, Page, codes, ok, parse_json, query_map};
use super::state::{DnsRecord, State as SimState, Zone};
use super::{CloudflareSim, new_id, ts};

type Sim = State<Arc<CloudflareSim>>;

const PROXIABLE: [&str; 3] = ["A", "AAAA", "CNAME"];
const TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "TXT", "MX", "NS", "CAA", "SRV", "PTR"];

pub fn zone_json(z: &Zone) -> Value {
    json!({
        "id": z.id,
        "name": z.name,
        "status": "active",
        "paused": false,
        "type": "full",
        "development_mode": 0,
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "original_name_servers": null,
        "original_registrar": null,
        "original_dnshost": null,
        "created_on": ts(z.created_on),
        "modified_on": ts(z.created_on),
        "activated_on": ts(z.created_on),
        "meta": {
            "step": 4, "custom_certificate_quota": 0, "page_rule_quota": 3,
            "phishing_detected": false, "cdn_only": false, "dns_only": false,
            "foundation_dns": false,
        },
        "owner": {"id": "5111a7ed000000000000000000000001", "type": "user",
                  "email": "owner@sim.invalid"},
        "account": {"id": z.account_id, "name": "Simulated account"},
        "permissions": ["#zone:read", "#dns_records:edit", "#dns_records:read"],
        "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website",
                 "price": 0, "currency": "USD", "frequency": "", "is_subscribed": false,
                 "can_subscribe": false, "legacy_id": "free", "legacy_discount": false,
                 "externally_managed": false},
    })
}

pub fn record_json(r: &DnsRecord) -> Value {
    let mut v = json!({
        "id": r.id,
        "zone_id": r.zone_id,
        "zone_name": r.zone_name,
        "name": r.name,
        "type": r.record_type,
        "content": r.content,
        "proxiable": PROXIABLE.contains(&r.record_type.as_str()),
        "proxied": r.proxied,
        // Proxied records always have an automatic TTL: the API reports 1 whatever was sent,
        // so a client that compares `ttl` on a proxied record must expect 1.
        "ttl": if r.proxied { 1 } else { r.ttl },
        "locked": false,
        "settings": {},
        "meta": {"auto_added": false, "managed_by_apps": false,
                 "managed_by_argo_tunnel": false, "source": "primary"},
        "tags": r.tags,
        "created_on": ts(r.created_on),
        "modified_on": ts(r.modified_on),
    });
    if let Value::Object(m) = &mut v {
        // The 2024 spec types `comment` as a plain string: leave it out when there is none.
        if let Some(c) = &r.comment {
            m.insert("comment".into(), json!(c));
        }
        if let Some(p) = r.priority {
            m.insert("priority".into(), json!(p));
        }
    }
    v
}

fn zone_not_found(zone_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NO_ROUTE,
        format!(
            "Could not route to /zones/{zone_id}/dns_records, perhaps your object identifier is invalid?"
        ),
    )
}

fn record_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::DNS_RECORD_NOT_FOUND,
        "Record does not exist.",
    )
}

/// Filter with the zones API's operator prefixes (`contains:`, `starts_with:`, …).
fn zone_name_matches(filter: &str, name: &str) -> bool {
    let (op, value) = filter.split_once(':').unwrap_or(("equal", filter));
    let (n, v) = (name.to_ascii_lowercase(), value.to_ascii_lowercase());
    match op {
        "not_equal" => n != v,
        "starts_with" => n.starts_with(&v),
        "ends_with" => n.ends_with(&v),
        "contains" => n.contains(&v),
        "starts_with_case_sensitive" => name.starts_with(value),
        "ends_with_case_sensitive" => name.ends_with(value),
        "contains_case_sensitive" => name.contains(value),
        // Plain `name=` (and `equal:`) is an exact match; an unknown "operator" is part of it.
        "equal" => n == v,
        _ => n == filter.to_ascii_lowercase(),
    }
}

pub async fn list_zones(
    State(sim): Sim,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authenticate(&headers, false)?;
    let q = query_map(query.as_deref());
    let page = Page::from_query(&q, 20, 5, 50);
    let state = sim.lock();
    let mut zones: Vec<&Zone> = state
        .zones
        .values()
        .filter(|z| q.get("name").is_none_or(|f| zone_name_matches(f, &z.name)))
        .filter(|z| q.get("account.id").is_none_or(|a| &z.account_id == a))
        .filter(|_| q.get("status").is_none_or(|s| s == "active"))
        .collect();
    zones.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(page.respond(&q, zones, zone_json))
}

pub async fn get_zone(
    State(sim): Sim,
    Path(zone_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authenticate(&headers, false)?;
    let state = sim.lock();
    let zone = state.zones.get(&zone_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            codes::NO_ROUTE,
            "Could not route to /zones, perhaps your object identifier is invalid?",
        )
    })?;
    Ok(ok(zone_json(zone)))
}

/// A string filter family (`x`, `x.exact`, `x.contains`, `x.startswith`, `x.endswith`).
/// Returns `None` when no such parameter was given.
fn string_filters(q: &HashMap<String, String>, field: &str, value: Option<&str>) -> Vec<bool> {
    let v = value.map(str::to_ascii_lowercase);
    let mut out = Vec::new();
    for (suffix, test) in [
        ("", 0u8),
        (".exact", 0),
        (".contains", 1),
        (".startswith", 2),
        (".endswith", 3),
    ] {
        if let Some(want) = q.get(&format!("{field}{suffix}")) {
            let want = want.trim_end_matches('.').to_ascii_lowercase();
            let hit = v.as_deref().is_some_and(|v| match test {
                0 => v == want,
                1 => v.contains(&want),
                2 => v.starts_with(&want),
                _ => v.ends_with(&want),
            });
            out.push(hit);
        }
    }
    out
}

fn record_filters(q: &HashMap<String, String>, r: &DnsRecord) -> Vec<bool> {
    let mut tests = Vec::new();
    tests.extend(string_filters(q, "name", Some(&r.name)));
    tests.extend(string_filters(q, "content", Some(&r.content)));
    tests.extend(string_filters(q, "comment", r.comment.as_deref()));
    if q.contains_key("comment.present") {
        tests.push(r.comment.is_some());
    }
    if q.contains_key("comment.absent") {
        tests.push(r.comment.is_none());
    }
    if let Some(p) = q.get("proxied") {
        tests.push(p.parse::<bool>().ok() == Some(r.proxied));
    }
    let tag_value = |name: &str| {
        r.tags.iter().find_map(|t| {
            let (n, v) = t.split_once(':').unwrap_or((t, ""));
            n.eq_ignore_ascii_case(name).then(|| v.to_ascii_lowercase())
        })
    };
    if let Some(t) = q.get("tag") {
        match t.split_once(':') {
            Some((n, v)) => tests.push(tag_value(n).as_deref() == Some(&v.to_ascii_lowercase())),
            None => tests.push(tag_value(t).is_some()),
        }
    }
    if let Some(n) = q.get("tag.present") {
        tests.push(tag_value(n).is_some());
    }
    if let Some(n) = q.get("tag.absent") {
        tests.push(tag_value(n).is_none());
    }
    if let Some((n, v)) = q.get("tag.exact").and_then(|t| t.split_once(':')) {
        tests.push(tag_value(n).as_deref() == Some(&v.to_ascii_lowercase()));
    }
    if let Some(s) = q.get("search") {
        let s = s.to_ascii_lowercase();
        tests.push(
            r.name.contains(&s)
                || r.content.to_ascii_lowercase().contains(&s)
                || r.comment
                    .as_deref()
                    .is_some_and(|c| c.to_ascii_lowercase().contains(&s)),
        );
    }
    tests
}

pub async fn list_records(
    State(sim): Sim,
    Path(zone_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authenticate(&headers, false)?;
    let q = query_map(query.as_deref());
    let page = Page::from_query(&q, 100, 1, 5_000_000);
    let any = match q.get("match").map(String::as_str) {
        None | Some("all") => false,
        Some("any") => true,
        Some(_) => return Err(ApiError::dns_bad_request("match must be 'all' or 'any'")),
    };
    let state = sim.lock();
    known_zone(&state, &zone_id)?;
    let mut records: Vec<&DnsRecord> = state
        .dns_records
        .values()
        .filter(|r| r.zone_id == zone_id)
        // `type` is a hard filter; the others combine with `match`.
        .filter(|r| {
            q.get("type")
                .is_none_or(|t| t.eq_ignore_ascii_case(&r.record_type))
        })
        .filter(|r| {
            let tests = record_filters(&q, r);
            tests.is_empty()
                || if any {
                    tests.iter().any(|t| *t)
                } else {
                    tests.iter().all(|t| *t)
                }
        })
        .collect();
    let order = q.get("order").map(String::as_str).unwrap_or("type");
    let cmp = |a: &&DnsRecord, b: &&DnsRecord| -> Ordering {
        let primary = match order {
            "name" => a.name.cmp(&b.name),
            "content" => a.content.cmp(&b.content),
            "ttl" => a.ttl.cmp(&b.ttl),
            "proxied" => a.proxied.cmp(&b.proxied),
            _ => a.record_type.cmp(&b.record_type),
        };
        primary.then(a.name.cmp(&b.name)).then(a.id.cmp(&b.id))
    };
    records.sort_by(cmp);
    Ok(page.respond(&q, records, record_json))
}

pub async fn get_record(
    State(sim): Sim,
    Path((zone_id, record_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authenticate(&headers, false)?;
    let state = sim.lock();
    known_zone(&state, &zone_id)?;
    let r = state
        .dns_records
        .get(&record_id)
        .filter(|r| r.zone_id == zone_id)
        .ok_or_else(record_not_found)?;
    Ok(ok(record_json(r)))
}

/// Fully-qualified, lower-case record name: `@` is the apex, relative names get the zone.
fn normalise_name(name: &str, zone: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name == "@" || name.is_empty() {
        zone.to_owned()
    } else if name == zone || name.ends_with(&format!(".{zone}")) {
        name
    } else {
        format!("{name}.{zone}")
    }
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
        })
}

/// Applies a request body to `r` (`full`: POST/PUT semantics, every required field present;
/// otherwise PATCH: only given fields change, `comment: null` clears it).
fn apply_body(r: &mut DnsRecord, body: &Map<String, Value>, full: bool) -> Result<(), ApiError> {
    let str_field = |k: &str| -> Result<Option<String>, ApiError> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::dns_bad_request(format!("{k} must be a string"))),
        }
    };
    if let Some(t) = str_field("type")? {
        r.record_type = t.to_ascii_uppercase();
    } else if full {
        return Err(ApiError::dns_bad_request("type is required"));
    }
    if let Some(n) = str_field("name")? {
        r.name = normalise_name(&n, &r.zone_name);
    } else if full {
        return Err(ApiError::dns_bad_request("name is required"));
    }
    if let Some(c) = str_field("content")? {
        r.content = c;
    } else if full {
        return Err(ApiError::dns_bad_request("content is required"));
    }
    match body.get("proxied") {
        None | Some(Value::Null) => {
            if full {
                r.proxied = false;
            }
        }
        Some(Value::Bool(b)) => r.proxied = *b,
        Some(_) => return Err(ApiError::dns_bad_request("proxied must be a boolean")),
    }
    match body.get("ttl") {
        None | Some(Value::Null) => {
            if full {
                r.ttl = 1;
            }
        }
        Some(v) => {
            let ttl = v
                .as_u64()
                .ok_or_else(|| ApiError::dns_bad_request("ttl must be a number"))?;
            if !(ttl == 1 || (60..=86400).contains(&ttl)) {
                return Err(ApiError::dns_bad_request(
                    "TTL must be between 60 and 86400 seconds, or 1 for Automatic.",
                ));
            }
            r.ttl = ttl as u32;
        }
    }
    match body.get("comment") {
        None => {
            if full {
                r.comment = None;
            }
        }
        Some(Value::Null) => r.comment = None,
        Some(Value::String(c)) if c.chars().count() <= 100 => {
            r.comment = (!c.is_empty()).then(|| c.clone())
        }
        Some(Value::String(_)) => {
            return Err(ApiError::dns_bad_request(
                "comment must be at most 100 characters",
            ));
        }
        Some(_) => return Err(ApiError::dns_bad_request("comment must be a string")),
    }
    match body.get("tags") {
        None => {
            if full {
                r.tags.clear();
            }
        }
        Some(Value::Null) => r.tags.clear(),
        Some(Value::Array(items)) => {
            r.tags = items
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| ApiError::dns_bad_request("tags must be strings"))
                })
                .collect::<Result<_, _>>()?;
        }
        Some(_) => return Err(ApiError::dns_bad_request("tags must be an array")),
    }
    if let Some(p) = body.get("priority").and_then(Value::as_u64) {
        r.priority = u16::try_from(p).ok();
    }
    validate(r)
}

fn validate(r: &DnsRecord) -> Result<(), ApiError> {
    if !TYPES.contains(&r.record_type.as_str()) {
        return Err(ApiError::dns_bad_request(format!(
            "Unsupported record type {:?}",
            r.record_type
        )));
    }
    if !valid_hostname(&r.name) {
        return Err(ApiError::dns_bad_request("Invalid record name"));
    }
    let content_ok = match r.record_type.as_str() {
        "A" => r.content.parse::<Ipv4Addr>().is_ok(),
        "AAAA" => r.content.parse::<Ipv6Addr>().is_ok(),
        "CNAME" => {
            let target = r.content.trim_end_matches('.').to_ascii_lowercase();
            valid_hostname(&target) && target != r.name
        }
        "MX" | "NS" | "PTR" => valid_hostname(r.content.trim_end_matches('.')),
        _ => !r.content.is_empty(),
    };
    if !content_ok {
        return Err(ApiError::dns_bad_request(format!(
            "Invalid content for a {} record",
            r.record_type
        )));
    }
    if r.proxied && !PROXIABLE.contains(&r.record_type.as_str()) {
        return Err(ApiError::dns_bad_request(format!(
            "{} records cannot be proxied",
            r.record_type
        )));
    }
    Ok(())
}

/// CNAMEs can't share a name with any other record; identical records are refused.
fn check_conflicts(state: &SimState, r: &DnsRecord) -> Result<(), ApiError> {
    for other in state
        .dns_records
        .values()
        .filter(|o| o.zone_id == r.zone_id && o.id != r.id && o.name == r.name)
    {
        if r.record_type == "CNAME" || other.record_type == "CNAME" {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::DNS_CNAME_CONFLICT,
                "An A, AAAA, or CNAME record with that host already exists.",
            ));
        }
        if other.record_type == r.record_type && other.content == r.content {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::DNS_RECORD_EXISTS,
                "Record already exists.",
            ));
        }
    }
    Ok(())
}

fn insert_record(
    state: &mut SimState,
    zone_id: &str,
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let zone = state
        .zones
        .get(zone_id)
        .ok_or_else(|| zone_not_found(zone_id))?;
    let now = Utc::now();
    let mut r = DnsRecord {
        id: new_id(),
        zone_id: zone.id.clone(),
        zone_name: zone.name.clone(),
        name: String::new(),
        record_type: String::new(),
        content: String::new(),
        proxied: false,
        ttl: 1,
        comment: None,
        tags: Vec::new(),
        priority: None,
        created_on: now,
        modified_on: now,
        routed_on: Some(now),
    };
    apply_body(&mut r, body, true)?;
    check_conflicts(state, &r)?;
    let json = record_json(&r);
    state.dns_records.insert(r.id.clone(), r);
    Ok(json)
}

/// `Ok` when the zone exists, else the API's "zone not found" error.
fn known_zone(state: &SimState, zone_id: &str) -> Result<(), ApiError> {
    if state.zones.contains_key(zone_id) {
        Ok(())
    } else {
        Err(zone_not_found(zone_id))
    }
}

fn update_existing(
    state: &mut SimState,
    zone_id: &str,
    record_id: &str,
    body: &Map<String, Value>,
    full: bool,
) -> Result<Value, ApiError> {
    known_zone(state, zone_id)?;
    let mut r = state
        .dns_records
        .get(record_id)
        .filter(|r| r.zone_id == zone_id)
        .ok_or_else(record_not_found)?
        .clone();
    // Only a change of where the name routes restarts a custom domain's validation; a comment
    // or TTL edit does not.
    let routing = |r: &DnsRecord| {
        (
            r.name.clone(),
            r.record_type.clone(),
            r.content.clone(),
            r.proxied,
        )
    };
    let before = routing(&r);
    apply_body(&mut r, body, full)?;
    check_conflicts(state, &r)?;
    r.modified_on = Utc::now();
    if before != routing(&r) {
        r.routed_on = Some(r.modified_on);
    }
    let json = record_json(&r);
    state.dns_records.insert(r.id.clone(), r);
    Ok(json)
}

fn delete_existing(
    state: &mut SimState,
    zone_id: &str,
    record_id: &str,
) -> Result<Value, ApiError> {
    known_zone(state, zone_id)?;
    state
        .dns_records
        .get(record_id)
        .filter(|r| r.zone_id == zone_id)
        .ok_or_else(record_not_found)?;
    let r = state
        .dns_records
        .remove(record_id)
        .ok_or_else(record_not_found)?;
    Ok(record_json(&r))
}

/// A DNS write's JSON object body, once the caller may write.
fn write_body(
    sim: &CloudflareSim,
    headers: &HeaderMap,
    body: &super::envelope::Body,
) -> Result<Map<String, Value>, ApiError> {
    sim.authenticate(headers, true)?;
    parse_json(body, codes::DNS_BAD_REQUEST)
}

pub async fn create_record(
    State(sim): Sim,
    Path(zone_id): Path<String>,
    headers: HeaderMap,
    body: super::envelope::Body,
) -> Result<Response, ApiError> {
    let body = write_body(&sim, &headers, &body)?;
    let result = sim.mutate(|state| insert_record(state, &zone_id, &body))?;
    sim.stats.bump(|s| s.dns_records_created += 1);
    Ok(ok(result))
}

/// PATCH changes the fields given; PUT replaces the record (fields left out take their defaults).
pub async fn update_record(
    State(sim): Sim,
    Path((zone_id, record_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: super::envelope::Body,
) -> Result<Response, ApiError> {
    let body = write_body(&sim, &headers, &body)?;
    let full = method == Method::PUT;
    let result = sim.mutate(|state| update_existing(state, &zone_id, &record_id, &body, full))?;
    Ok(ok(result))
}

pub async fn delete_record(
    State(sim): Sim,
    Path((zone_id, record_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authenticate(&headers, true)?;
    sim.mutate(|state| delete_existing(state, &zone_id, &record_id))?;
    Ok(ok(json!({ "id": record_id })))
}

/// Changes per batch request (the API's documented batch limit on the Free plan).
pub const MAX_BATCH_CHANGES: usize = 200;

/// `POST /zones/{z}/dns_records/batch` — `{deletes: [{id}], patches: [{id, …}], puts: [{id, …}],
/// posts: [{…}]}`, applied in that order, all or nothing; the result lists the records each
/// group produced. (Not in the 2024 OpenAPI document; shape per the current API reference.)
/// One call per zone instead of one per client keeps a large fleet inside the rate limit.
pub async fn batch_records(
    State(sim): Sim,
    Path(zone_id): Path<String>,
    headers: HeaderMap,
    body: super::envelope::Body,
) -> Result<Response, ApiError> {
    let body = write_body(&sim, &headers, &body)?;
    let group = |name: &str| -> Result<Vec<Map<String, Value>>, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_object().cloned().ok_or_else(|| {
                        ApiError::dns_bad_request(format!("{name} items must be objects"))
                    })
                })
                .collect(),
            Some(_) => Err(ApiError::dns_bad_request(format!(
                "{name} must be an array"
            ))),
        }
    };
    let (deletes, patches, puts, posts) = (
        group("deletes")?,
        group("patches")?,
        group("puts")?,
        group("posts")?,
    );
    let total = deletes.len() + patches.len() + puts.len() + posts.len();
    if total > MAX_BATCH_CHANGES {
        return Err(ApiError::dns_bad_request(format!(
            "A batch may hold at most {MAX_BATCH_CHANGES} changes; got {total}."
        )));
    }
    let id_of = |item: &Map<String, Value>| -> Result<String, ApiError> {
        item.get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::dns_bad_request("batch deletes, patches and puts need an id"))
    };
    let created = posts.len() as u64;
    let result = sim.mutate(|state| {
        let before = state.dns_records.clone();
        let mut run = || -> Result<Value, ApiError> {
            let mut out = json!({"deletes": [], "patches": [], "puts": [], "posts": []});
            for item in &deletes {
                let r = delete_existing(state, &zone_id, &id_of(item)?)?;
                push(&mut out, "deletes", r);
            }
            for item in &patches {
                let r = update_existing(state, &zone_id, &id_of(item)?, item, false)?;
                push(&mut out, "patches", r);
            }
            for item in &puts {
                let r = update_existing(state, &zone_id, &id_of(item)?, item, true)?;
                push(&mut out, "puts", r);
            }
            for item in &posts {
                let r = insert_record(state, &zone_id, item)?;
                push(&mut out, "posts", r);
            }
            Ok(out)
        };
        let outcome = run();
        if outcome.is_err() {
            state.dns_records = before;
        }
        outcome
    })?;
    sim.stats.bump(|s| s.dns_records_created += created);
    Ok(ok(result))
}

fn push(out: &mut Value, group: &str, record: Value) {
    if let Some(list) = out.get_mut(group).and_then(Value::as_array_mut) {
        list.push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise_name("@", "example.com"), "example.com");
        assert_eq!(normalise_name("Acme", "example.com"), "acme.example.com");
        assert_eq!(
            normalise_name("acme.example.com.", "example.com"),
            "acme.example.com"
        );
    }

    #[test]
    fn zone_name_operators() {
        assert!(zone_name_matches("example.com", "example.com"));
        assert!(!zone_name_matches("example.co", "example.com"));
        assert!(zone_name_matches("contains:ample", "example.com"));
        assert!(zone_name_matches("ends_with:.com", "example.com"));
        assert!(zone_name_matches("starts_with:exa", "example.com"));
    }
}

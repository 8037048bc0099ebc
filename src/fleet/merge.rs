//! How a client's file merges over the fleet's `defaults:`.
//!
//! The rule, also stated in the README: scalars — the client's value wins; maps (`buckets`,
//! `frontend.env`, and each bucket's fields) — merged key by key, the client's key winning;
//! lists (`additional_redirect_urls`, `allowed_mime_types`) — the client's list replaces the
//! default list whole. Pure functions, no I/O.

use std::collections::BTreeMap;

use super::model::{
    AuthSettings, BucketSettings, ClientSettings, FrontendSettings, SupabaseSettings,
};

/// Which file a merged value came from, so a later error can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Defaults,
    Client,
}

/// `defaults` overlaid with `client`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    pub region: Option<String>,
    pub instance_size: Option<String>,
    pub buckets: BTreeMap<String, BucketSettings>,
    pub additional_redirect_urls: Vec<String>,
    /// Build-time variables with the file each came from.
    pub env: BTreeMap<String, (String, Origin)>,
}

pub fn merge(defaults: &ClientSettings, client: &ClientSettings) -> Merged {
    let (ds, cs) = (sup(&defaults.supabase), sup(&client.supabase));
    let mut buckets = ds.buckets.clone().unwrap_or_default();
    for (name, c) in cs.buckets.iter().flatten() {
        let merged = match buckets.get(name) {
            Some(d) => merge_bucket(d, c),
            None => c.clone(),
        };
        buckets.insert(name.clone(), merged);
    }

    let mut env: BTreeMap<String, (String, Origin)> = BTreeMap::new();
    for (k, v) in front(&defaults.frontend).env.iter().flatten() {
        env.insert(k.clone(), (v.clone(), Origin::Defaults));
    }
    for (k, v) in front(&client.frontend).env.iter().flatten() {
        env.insert(k.clone(), (v.clone(), Origin::Client));
    }

    Merged {
        region: cs.region.clone().or_else(|| ds.region.clone()),
        instance_size: cs
            .instance_size
            .clone()
            .or_else(|| ds.instance_size.clone()),
        buckets,
        additional_redirect_urls: auth(&client.auth)
            .additional_redirect_urls
            .clone()
            .or_else(|| auth(&defaults.auth).additional_redirect_urls.clone())
            .unwrap_or_default(),
        env,
    }
}

fn merge_bucket(d: &BucketSettings, c: &BucketSettings) -> BucketSettings {
    BucketSettings {
        public: c.public.or(d.public),
        file_size_limit: c.file_size_limit.or(d.file_size_limit),
        allowed_mime_types: c
            .allowed_mime_types
            .clone()
            .or_else(|| d.allowed_mime_types.clone()),
    }
}

fn sup(s: &Option<SupabaseSettings>) -> SupabaseSettings {
    s.clone().unwrap_or_default()
}
fn auth(s: &Option<AuthSettings>) -> AuthSettings {
    s.clone().unwrap_or_default()
}
fn front(s: &Option<FrontendSettings>) -> FrontendSettings {
    s.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> ClientSettings {
        serde_saphyr::from_str(yaml).expect("test YAML parses")
    }

    /// One row per merge rule: (rule, defaults, client, check on the result).
    #[test]
    fn merge_rules() {
        type Check = fn(&Merged) -> bool;
        let cases: &[(&str, &str, &str, Check)] = &[
            (
                "scalar: default used when client silent",
                "supabase: {region: eu-west-2}",
                "{}",
                |m| m.region.as_deref() == Some("eu-west-2"),
            ),
            (
                "scalar: client wins",
                "supabase: {region: eu-west-2}",
                "supabase: {region: us-east-1}",
                |m| m.region.as_deref() == Some("us-east-1"),
            ),
            (
                "scalar: sibling scalars are independent",
                "supabase: {region: eu-west-2, instance_size: micro}",
                "supabase: {instance_size: small}",
                |m| {
                    m.region.as_deref() == Some("eu-west-2")
                        && m.instance_size.as_deref() == Some("small")
                },
            ),
            (
                "map: client adds a bucket, defaults kept",
                "supabase: {buckets: {a: {public: false}}}",
                "supabase: {buckets: {b: {public: true}}}",
                |m| {
                    m.buckets.len() == 2
                        && m.buckets["a"].public == Some(false)
                        && m.buckets["b"].public == Some(true)
                },
            ),
            (
                "map: client overrides one field of a default bucket, others kept",
                "supabase: {buckets: {a: {public: false, file_size_limit: 10}}}",
                "supabase: {buckets: {a: {public: true}}}",
                |m| {
                    m.buckets["a"].public == Some(true)
                        && m.buckets["a"].file_size_limit == Some(10)
                },
            ),
            (
                "list inside a map entry: client list replaces",
                "supabase: {buckets: {a: {allowed_mime_types: [image/png, image/jpeg]}}}",
                "supabase: {buckets: {a: {allowed_mime_types: [application/pdf]}}}",
                |m| {
                    m.buckets["a"].allowed_mime_types.as_deref()
                        == Some(&["application/pdf".to_string()][..])
                },
            ),
            (
                "list: client list replaces the default list",
                "auth: {additional_redirect_urls: ['http://localhost:5173/**', 'https://x.test/**']}",
                "auth: {additional_redirect_urls: ['https://y.test/**']}",
                |m| m.additional_redirect_urls == vec!["https://y.test/**".to_string()],
            ),
            (
                "list: an empty client list clears the default",
                "auth: {additional_redirect_urls: ['https://x.test/**']}",
                "auth: {additional_redirect_urls: []}",
                |m| m.additional_redirect_urls.is_empty(),
            ),
            (
                "list: default used when client silent",
                "auth: {additional_redirect_urls: ['https://x.test/**']}",
                "{}",
                |m| m.additional_redirect_urls == vec!["https://x.test/**".to_string()],
            ),
            (
                "env map: merged key by key with origins",
                "frontend: {env: {VITE_A: '1', VITE_B: '2'}}",
                "frontend: {env: {VITE_B: '3', VITE_C: '4'}}",
                |m| {
                    m.env["VITE_A"] == ("1".into(), Origin::Defaults)
                        && m.env["VITE_B"] == ("3".into(), Origin::Client)
                        && m.env["VITE_C"] == ("4".into(), Origin::Client)
                },
            ),
            ("nothing anywhere: empty", "{}", "{}", |m| {
                *m == Merged::default()
            }),
        ];
        for (rule, d, c, check) in cases {
            let m = merge(&settings(d), &settings(c));
            assert!(check(&m), "merge rule failed: {rule}\n  got {m:?}");
        }
    }
}

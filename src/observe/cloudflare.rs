//! Observing every client's site with list calls: one paged listing of each account's Pages
//! projects (subdomain, domains, live deployment with its fingerprint), one paged listing of the
//! zone's DNS records, and a per-domain read only for domains not yet known to be active.
//!
//! "Known to be active" is recorded in the world itself: once apply has seen a domain become
//! active it marks its DNS record's comment (`… domain active`), so a no-op plan costs a few
//! list pages whatever the number of clients.

use std::collections::BTreeMap;

use futures::StreamExt;

use super::model::{ObservedDns, ObservedPages, ObservedSite};
use crate::cloudflare::types::DomainStatus;
use crate::cloudflare::{CloudflareClient, DnsFilters, DnsRecord};
use crate::fleet::placement::{Account, Inventory};
use crate::fleet::{ClientSpec, Fleet};
use crate::plan::ownership;

/// The sites of `selected` clients, and what every account holds (for
/// [`crate::fleet::placement`]: the whole fleet is placed, not only the selection). A listing
/// failure is returned as an error: without the listings nothing about any site is known.
pub async fn observe(
    cf: &CloudflareClient,
    fleet: &Fleet,
    accounts: &[Account],
    selected: &[&ClientSpec],
    parallelism: usize,
) -> Result<(BTreeMap<String, ObservedSite>, Inventory), crate::http::Error> {
    let zone_name = &fleet.settings.cloudflare.zone;
    // One token for every account: the clients share its limiter.
    let listings = futures::future::try_join_all(accounts.iter().map(|a| {
        let client = cf.for_account(a.id.clone());
        async move { client.list_projects().await.map(|p| (a.id.clone(), p)) }
    }));
    let (listings, zone) = tokio::join!(listings, cf.find_zone(zone_name));
    let listings = listings?;
    let records: Vec<DnsRecord> = match zone? {
        Some(z) => cf.list_dns_records(&z.id, &DnsFilters::default()).await?,
        None => Vec::new(),
    };
    let inventory: Inventory = listings
        .iter()
        .map(|(account, projects)| {
            (
                account.clone(),
                projects.iter().map(|p| p.name.clone()).collect(),
            )
        })
        .collect();
    // A name in several accounts is placement's error to report; here the first one is read.
    let mut by_name: BTreeMap<&str, (&str, &crate::cloudflare::PagesProject)> = BTreeMap::new();
    for (account, projects) in &listings {
        for p in projects {
            by_name
                .entry(p.name.as_str())
                .or_insert((account.as_str(), p));
        }
    }

    let sites = futures::stream::iter(selected.iter().map(|spec| {
        let holder = by_name.get(spec.pages_project.as_str());
        let site_cf = holder.map(|(account, _)| cf.for_account(*account));
        let pages = holder.map(|(_, p)| ObservedPages {
            live_deployment_id: p.canonical_deployment.as_ref().map(|d| d.id.clone()),
            live_commit_hash: p
                .canonical_deployment
                .as_ref()
                .and_then(|d| d.metadata().commit_hash.clone()),
            name: p.name.clone(),
            subdomain: p.subdomain.clone(),
            production_branch: p.production_branch.clone(),
            domains: p.domains.clone(),
            live_commit_message: p
                .canonical_deployment
                .as_ref()
                .and_then(|d| d.metadata().commit_message.clone()),
            live_deployed_on: p
                .canonical_deployment
                .as_ref()
                .and_then(|d| d.created_on.clone()),
        });
        let dns = records
            .iter()
            .find(|r| r.name == spec.domain)
            .map(|r| ObservedDns {
                id: r.id.clone(),
                record_type: r.record_type.clone(),
                content: r.content.clone(),
                proxied: r.proxied,
                comment: r.comment.clone(),
            });
        async move {
            let mut site = ObservedSite {
                pages,
                dns,
                domain_status: None,
                error: None,
            };
            let attached = site
                .pages
                .as_ref()
                .is_some_and(|p| p.domains.contains(&spec.domain));
            let known_active = site
                .dns
                .as_ref()
                .is_some_and(|d| ownership::marked_active(d.comment.as_deref(), &spec.slug));
            if attached && known_active {
                site.domain_status = Some(DomainStatus::Active);
            } else if let (true, Some(cf)) = (attached, &site_cf) {
                match cf.get_domain(&spec.pages_project, &spec.domain).await {
                    Ok(Some(d)) => site.domain_status = Some(d.status),
                    Ok(None) => {}
                    Err(e) => site.error = Some(format!("reading domain {}: {e}", spec.domain)),
                }
            }
            (spec.slug.clone(), site)
        }
    }))
    .buffer_unordered(parallelism.max(1))
    .collect::<Vec<_>>()
    .await;
    Ok((sites.into_iter().collect(), inventory))
}

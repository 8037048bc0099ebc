//! One applier per fleet: a lease held on Cloudflare's side (DESIGN.md §11 and §13).
//!
//! intelli keeps no state file to lock, so the lock lives where the vendor makes creation
//! atomic: Cloudflare refuses to create a DNS record identical to one that exists (same type,
//! name and content, error 81057). The lease is a TXT record with **constant content** at a
//! fixed name in the fleet's zone:
//!
//! - name `_intelli-lease-<fleet>.<zone>`, content `intelli-lease shard=K/N` (one record per
//!   (fleet, shard) key, so `--shard` runs can hold their shards side by side);
//! - its comment names the owner (`user@host:pid:nonce`), the shard, the TTL and a heartbeat
//!   counter;
//! - taking it is one create: success means we hold it, 81057 means someone else does;
//! - the holder renews it (a PATCH by record id that changes the counter, so `modified_on`
//!   moves) every [`LeaseConfig::ttl`] / 5;
//! - it is stale when Cloudflare's own clock (the `Date` of the list answer) is past its
//!   `modified_on` + TTL — never judged by a local clock, so skew between machines cannot make
//!   a live lease look dead;
//! - a stale lease is taken over by a DELETE by its id (a 404 means another applier took it
//!   first: look again) and a new create;
//! - a holder that has not renewed for 3/4 of the TTL (on its own monotonic clock) stops
//!   writing: [`LeaseGuard::check`] fails and the engine starts nothing new;
//! - a holder with a different shard count N is refused: the shards of two layouts overlap.
//!
//! The TTL must outlast Cloudflare's 5-minute rate-limit block (the heartbeat waits through
//! one), hence the 15-minute default ([`DEFAULT_TTL`]). The record matches no client's domain
//! and carries no `managed by intelli` comment, so DNS ownership and orphan reporting never
//! see it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::cloudflare::{CloudflareClient, DnsFilters, DnsRecord, DnsRecordInput, DnsRecordPatch};
use crate::http::{Error as HttpError, ErrorKind};

/// Default lease TTL: beyond Cloudflare's 5-minute block plus a heartbeat interval.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// Environment variable overriding the TTL, in seconds (tests use a few seconds).
pub const TTL_ENV: &str = "INTELLI_LEASE_TTL_SECS";
/// The content every lease record starts with.
const CONTENT_PREFIX: &str = "intelli-lease";
/// The comment every lease record starts with (never `managed by intelli`).
const COMMENT_PREFIX: &str = "intelli lease";
/// Bound on look/delete/create rounds of one acquisition that never wait (a vendor that keeps
/// changing its answer must not spin us forever).
const MAX_ROUNDS: u32 = 20;

/// Which part of the fleet a run works on: shard `index` of `count` (1-based). The whole
/// fleet is 1/1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    fn parse(text: &str) -> Option<Shard> {
        let (k, n) = text.split_once('/')?;
        let shard = Shard {
            index: k.parse().ok()?,
            count: n.parse().ok()?,
        };
        (shard.index >= 1 && shard.index <= shard.count).then_some(shard)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How to take the lease.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// The zone the record lives in (the fleet's `cloudflare.zone`).
    pub zone: String,
    /// The fleet's label in the record name (from `name_prefix`).
    pub fleet: String,
    pub shard: Shard,
    pub ttl: Duration,
    /// How long to wait for a live lease held by someone else; zero fails at once.
    pub lock_timeout: Duration,
    /// Time between looks while waiting.
    pub poll: Duration,
}

impl LeaseConfig {
    /// The defaults for a fleet: TTL from [`TTL_ENV`] or [`DEFAULT_TTL`].
    pub fn new(zone: &str, name_prefix: &str, lock_timeout: Duration) -> LeaseConfig {
        let ttl = std::env::var(TTL_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map_or(DEFAULT_TTL, Duration::from_secs);
        LeaseConfig {
            zone: zone.trim_end_matches('.').to_ascii_lowercase(),
            fleet: fleet_label(name_prefix),
            shard: Shard::WHOLE,
            ttl,
            lock_timeout,
            poll: (ttl / 10).clamp(Duration::from_millis(200), Duration::from_secs(10)),
        }
    }

    /// The record's full name.
    pub fn record_name(&self) -> String {
        format!("_intelli-lease-{}.{}", self.fleet, self.zone)
    }

    fn content(&self) -> String {
        format!("{CONTENT_PREFIX} shard={}", self.shard)
    }
}

/// The name prefix as a DNS label: lowercase letters, digits and single dashes.
fn fleet_label(prefix: &str) -> String {
    let mut label: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while label.contains("--") {
        label = label.replace("--", "-");
    }
    let label = label.trim_matches('-');
    if label.is_empty() {
        "fleet".to_owned()
    } else {
        label.chars().take(40).collect()
    }
}

/// Who holds a lease, as read from its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub owner: String,
    pub shard: Shard,
    pub ttl: Duration,
    /// When it was taken (`created_on`, Cloudflare's clock).
    pub since: String,
    /// Last heartbeat (`modified_on`).
    pub renewed: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (shard {}, since {}, last renewed {}, TTL {}s)",
            self.owner,
            self.shard,
            self.since,
            self.renewed,
            self.ttl.as_secs()
        )
    }
}

/// Why the lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another apply holds the fleet's lease: {holder}{waited}. Wait for it to finish, pass \
         --lock-timeout to wait, or, if that run is dead, break the lease (README, \"Reliability\")"
    )]
    Held { holder: Holder, waited: String },
    #[error(
        "the fleet's lease is held by {holder}, which splits the fleet into {} shards, not {ours}: \
         shards of two layouts overlap, so this run may not act until it ends",
        holder.shard.count
    )]
    ShardLayout { holder: Holder, ours: u32 },
    #[error("the fleet's zone {0} is not visible to the Cloudflare token; the lease lives there")]
    NoZone(String),
    #[error("the lease was lost ({0}); this run stops writing")]
    Lost(String),
    /// [`LeaseGuard::stop`]: the process is shutting down; nothing new starts.
    #[error("stopping ({0}): no new step starts; the next run resumes")]
    Stopping(String),
    #[error("taking the fleet's lease: the vendor's answers kept changing; try again")]
    Unsettled,
    #[error("the fleet's lease")]
    Vendor(#[source] HttpError),
}

impl From<HttpError> for LeaseError {
    fn from(e: HttpError) -> Self {
        LeaseError::Vendor(e)
    }
}

/// A lease record as found.
#[derive(Clone, Debug)]
struct Found {
    record: DnsRecord,
    holder: Holder,
    /// Stale on Cloudflare's clock; `false` when that clock was not given.
    stale: bool,
}

/// What a holder's work checks before each write.
#[derive(Clone, Debug)]
pub struct LeaseGuard(Arc<GuardState>);

#[derive(Debug)]
struct GuardState {
    ttl: Duration,
    /// Local monotonic time of the last renewal Cloudflare confirmed.
    renewed: Mutex<Instant>,
    lost: Mutex<Option<String>>,
    /// Set by [`LeaseGuard::stop`] (a signal): the steps in flight finish, no new one starts.
    stopping: Mutex<Option<String>>,
}

impl LeaseGuard {
    /// Ok while the lease is surely still ours: renewed within 3/4 of its TTL (so a taker,
    /// which waits the whole TTL on Cloudflare's clock, cannot have taken it) and never
    /// found gone.
    pub fn check(&self) -> Result<(), LeaseError> {
        if let Some(why) = self
            .0
            .stopping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Err(LeaseError::Stopping(why.clone()));
        }
        let lost = self.0.lost.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = lost.as_ref() {
            return Err(LeaseError::Lost(why.clone()));
        }
        let renewed = *self.0.renewed.lock().unwrap_or_else(|p| p.into_inner());
        if renewed.elapsed() > self.0.ttl * 3 / 4 {
            return Err(LeaseError::Lost(format!(
                "not renewed for {}s of its {}s TTL",
                renewed.elapsed().as_secs(),
                self.0.ttl.as_secs()
            )));
        }
        Ok(())
    }

    /// A guard for a run that holds no lease (`--no-lock`, the sandbox without Cloudflare):
    /// it never expires, and exists so that [`LeaseGuard::stop`] can still stop the run.
    pub fn unleased() -> LeaseGuard {
        LeaseGuard(Arc::new(GuardState {
            // Renewal is never checked against a TTL this long.
            ttl: Duration::from_secs(u64::from(u32::MAX)),
            renewed: Mutex::new(Instant::now()),
            lost: Mutex::new(None),
            stopping: Mutex::new(None),
        }))
    }

    /// Stop the holder's work cleanly: every step already started finishes (its client is
    /// left as a finished step leaves it, which the next plan picks up), and [`check`]
    /// refuses every step after it. This is how a signal ends `intelli reconcile`'s apply.
    ///
    /// [`check`]: LeaseGuard::check
    pub fn stop(&self, why: &str) {
        self.0
            .stopping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| why.to_string());
    }

    fn renewed_now(&self) {
        *self.0.renewed.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn lose(&self, why: String) {
        self.0
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(why);
    }
}

/// A held lease. Renewed in the background until [`Lease::release`]; dropping it without
/// releasing stops the renewals, and the record lapses after its TTL.
pub struct Lease {
    cf: CloudflareClient,
    zone_id: String,
    record_id: String,
    holder: Holder,
    guard: LeaseGuard,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Take the lease for `config`'s (fleet, shard), waiting up to its `lock_timeout` for a
    /// live holder to finish. `say` reports waiting.
    pub async fn acquire(
        cf: &CloudflareClient,
        config: &LeaseConfig,
        say: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Lease, LeaseError> {
        let zone = cf
            .find_zone(&config.zone)
            .await?
            .ok_or_else(|| LeaseError::NoZone(config.zone.clone()))?;
        let owner = owner_id();
        let started = Instant::now();
        let mut said = false;
        let mut rounds = 0;
        loop {
            rounds += 1;
            match try_take(cf, &zone.id, config, &owner).await? {
                Attempt::Taken(record) => {
                    return Ok(Lease::start(cf, zone.id, record, config, owner));
                }
                Attempt::Again if rounds < MAX_ROUNDS => continue,
                Attempt::Again => return Err(LeaseError::Unsettled),
                Attempt::Held(holder) => {
                    if started.elapsed() >= config.lock_timeout {
                        let waited = if config.lock_timeout.is_zero() {
                            String::new()
                        } else {
                            format!("; waited {}s", started.elapsed().as_secs())
                        };
                        return Err(LeaseError::Held { holder, waited });
                    }
                    if !said {
                        say(&format!("waiting for the fleet's lease, held by {holder}"));
                        said = true;
                    }
                    rounds = 0;
                    tokio::time::sleep(config.poll).await;
                }
            }
        }
    }

    fn start(
        cf: &CloudflareClient,
        zone_id: String,
        record: DnsRecord,
        config: &LeaseConfig,
        owner: String,
    ) -> Lease {
        let guard = LeaseGuard(Arc::new(GuardState {
            ttl: config.ttl,
            renewed: Mutex::new(Instant::now()),
            lost: Mutex::new(None),
            stopping: Mutex::new(None),
        }));
        let holder = Holder {
            owner,
            shard: config.shard,
            ttl: config.ttl,
            since: record.created_on.clone().unwrap_or_default(),
            renewed: record.modified_on.clone().unwrap_or_default(),
        };
        let heartbeat = tokio::spawn(heartbeat(
            cf.clone(),
            zone_id.clone(),
            record.id.clone(),
            holder.clone(),
            guard.clone(),
        ));
        Lease {
            cf: cf.clone(),
            zone_id,
            record_id: record.id,
            holder,
            guard,
            heartbeat,
        }
    }

    /// What the holder's work checks before each write.
    pub fn guard(&self) -> LeaseGuard {
        self.guard.clone()
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Stop renewing and delete the record (by id: never someone else's). A record already
    /// gone is fine.
    pub async fn release(self) -> Result<(), LeaseError> {
        self.heartbeat.abort();
        self.cf
            .delete_dns_record(&self.zone_id, &self.record_id)
            .await?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// One round of taking the lease.
enum Attempt {
    Taken(DnsRecord),
    Held(Holder),
    /// Something changed under us (a stale lease removed, a create lost): look again.
    Again,
}

async fn try_take(
    cf: &CloudflareClient,
    zone_id: &str,
    config: &LeaseConfig,
    owner: &str,
) -> Result<Attempt, LeaseError> {
    let leases = look(cf, zone_id, config).await?;
    for found in &leases {
        let other_layout = found.holder.shard.count != config.shard.count;
        if other_layout && !found.stale {
            return Err(LeaseError::ShardLayout {
                holder: found.holder.clone(),
                ours: config.shard.count,
            });
        }
    }
    let content = config.content();
    if let Some(found) = leases.iter().find(|f| f.record.content == content) {
        if found.holder.owner == owner {
            // Our own create whose answer was lost.
            return Ok(Attempt::Taken(found.record.clone()));
        }
        if !found.stale {
            return Ok(Attempt::Held(found.holder.clone()));
        }
        // Stale: remove exactly that record. Gone already means another applier took it
        // over first; either way, look again.
        cf.delete_dns_record(zone_id, &found.record.id).await?;
        return Ok(Attempt::Again);
    }
    let input = DnsRecordInput {
        record_type: "TXT".into(),
        name: config.record_name(),
        content,
        proxied: None,
        ttl: 60,
        comment: Some(comment(owner, config.shard, config.ttl, 0)),
        tags: None,
    };
    let record = match cf.create_dns_record_once(zone_id, &input).await {
        Ok(record) => record,
        // Identical record: someone else just took it. Unknown outcome: our next look
        // finds ours by the owner in the comment, or not.
        Err(e)
            if is_identical_refusal(&e) || e.is_ambiguous() || e.kind() == ErrorKind::Connect =>
        {
            return Ok(Attempt::Again);
        }
        Err(e) => return Err(e.into()),
    };
    // Another layout's shard may have been created in the same instant (its content differs,
    // so Cloudflare let both in): look once more, and step back if so.
    let after = look(cf, zone_id, config).await?;
    if let Some(other) = after
        .iter()
        .find(|f| f.holder.shard.count != config.shard.count && !f.stale)
    {
        cf.delete_dns_record(zone_id, &record.id).await?;
        return Err(LeaseError::ShardLayout {
            holder: other.holder.clone(),
            ours: config.shard.count,
        });
    }
    Ok(Attempt::Taken(record))
}

fn is_identical_refusal(e: &HttpError) -> bool {
    crate::cloudflare::has_code(e, crate::cloudflare::codes::DNS_RECORD_EXISTS)
}

/// Every lease record of the fleet (all shards), judged against Cloudflare's clock.
async fn look(
    cf: &CloudflareClient,
    zone_id: &str,
    config: &LeaseConfig,
) -> Result<Vec<Found>, LeaseError> {
    let filters = DnsFilters {
        record_type: Some("TXT".into()),
        name: Some(config.record_name()),
        ..DnsFilters::default()
    };
    let (records, vendor_now) = cf.dns_records_at_vendor_time(zone_id, &filters).await?;
    Ok(records
        .into_iter()
        .filter(|r| r.content.starts_with(CONTENT_PREFIX))
        .map(|record| {
            let holder = parse_holder(&record);
            let stale = is_stale(&record, holder.ttl, vendor_now);
            Found {
                record,
                holder,
                stale,
            }
        })
        .collect())
}

/// Past `modified_on` + TTL on Cloudflare's clock. Without that clock, or with a timestamp
/// that does not parse, a lease is live: refusing is the safe mistake.
fn is_stale(record: &DnsRecord, ttl: Duration, vendor_now: Option<SystemTime>) -> bool {
    let Some(now) = vendor_now else {
        return false;
    };
    let Some(modified) = record
        .modified_on
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    else {
        return false;
    };
    let modified = SystemTime::from(modified.with_timezone(&chrono::Utc));
    now.duration_since(modified).is_ok_and(|age| age > ttl)
}

/// The comment of a lease record. Cloudflare's free plan allows 100 characters.
fn comment(owner: &str, shard: Shard, ttl: Duration, beat: u64) -> String {
    format!(
        "{COMMENT_PREFIX}; owner={owner}; shard={shard}; ttl={}; beat={beat}",
        ttl.as_secs()
    )
}

/// Read a lease record's comment. Fields that are missing read as "unknown owner", the
/// shard from the content, and the default TTL.
fn parse_holder(record: &DnsRecord) -> Holder {
    let text = record.comment.as_deref().unwrap_or_default();
    let field = |name: &str| {
        text.split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let shard = field("shard")
        .or_else(|| {
            record
                .content
                .split_once("shard=")
                .map(|(_, s)| s.to_owned())
        })
        .and_then(|s| Shard::parse(&s))
        .unwrap_or(Shard::WHOLE);
    Holder {
        owner: field("owner").unwrap_or_else(|| "an unknown owner".into()),
        shard,
        ttl: field("ttl")
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(DEFAULT_TTL, Duration::from_secs),
        since: record.created_on.clone().unwrap_or_default(),
        renewed: record.modified_on.clone().unwrap_or_default(),
    }
}

/// `user@host:pid:nonce`: who to ask, and a nonce so a lost create can be recognised as ours.
fn owner_id() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "someone".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    let nonce = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let clip = |s: &str, n: usize| -> String {
        s.chars()
            .filter(|c| !matches!(c, ';' | '='))
            .take(n)
            .collect()
    };
    format!(
        "{}@{}:{}:{nonce}",
        clip(&user, 16),
        clip(&host, 24),
        std::process::id()
    )
}

/// Renew every TTL/5 until aborted. A 404 means the lease was taken over (we were judged
/// stale): lost at once. Other failures are retried; [`LeaseGuard::check`] fails by itself
/// when renewals stop succeeding for too long.
async fn heartbeat(
    cf: CloudflareClient,
    zone_id: String,
    record_id: String,
    holder: Holder,
    guard: LeaseGuard,
) {
    let every = holder.ttl / 5;
    let mut beat: u64 = 0;
    loop {
        tokio::time::sleep(every).await;
        beat += 1;
        let patch = DnsRecordPatch {
            comment: Some(comment(&holder.owner, holder.shard, holder.ttl, beat)),
            ..DnsRecordPatch::default()
        };
        match cf.patch_dns_record(&zone_id, &record_id, &patch).await {
            Ok(_) => guard.renewed_now(),
            Err(e) if e.is_not_found() => {
                guard.lose("its record was deleted: another applier judged it stale".into());
                return;
            }
            Err(e) => tracing::warn!(error = %e, "renewing the fleet's lease failed; trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(comment: &str, modified: &str) -> DnsRecord {
        serde_json::from_value(serde_json::json!({
            "id": "r1", "type": "TXT", "name": "_intelli-lease-x.example.com",
            "content": "intelli-lease shard=2/4", "comment": comment,
            "created_on": "2026-01-01T00:00:00Z", "modified_on": modified,
        }))
        .unwrap()
    }

    #[test]
    fn comment_round_trips_and_fits_the_free_plan() {
        let owner = owner_id();
        let c = comment(&owner, Shard { index: 2, count: 4 }, DEFAULT_TTL, 12345);
        assert!(c.len() <= 100, "{} chars: {c}", c.len());
        let h = parse_holder(&record(&c, "2026-01-01T00:05:00Z"));
        assert_eq!(h.owner, owner);
        assert_eq!(h.shard, Shard { index: 2, count: 4 });
        assert_eq!(h.ttl, DEFAULT_TTL);
        assert!(!c.starts_with("managed by intelli"));
    }

    #[test]
    fn staleness_is_judged_on_the_vendor_clock_only() {
        let r = record("intelli lease; ttl=60", "2026-01-01T00:05:00.123Z");
        let at = |s: &str| {
            Some(SystemTime::from(
                chrono::DateTime::parse_from_rfc3339(s).unwrap(),
            ))
        };
        let ttl = Duration::from_secs(60);
        assert!(!is_stale(&r, ttl, at("2026-01-01T00:05:30Z")));
        assert!(is_stale(&r, ttl, at("2026-01-01T00:06:01Z")));
        // No vendor clock: never stale.
        assert!(!is_stale(&r, ttl, None));
    }

    #[test]
    fn fleet_label_is_a_dns_label() {
        assert_eq!(fleet_label("intelli-"), "intelli");
        assert_eq!(fleet_label("Acme__Corp--"), "acme-corp");
        assert_eq!(fleet_label("--"), "fleet");
        let c = LeaseConfig::new("Example.com.", "intelli-", Duration::ZERO);
        assert_eq!(c.record_name(), "_intelli-lease-intelli.example.com");
        assert_eq!(c.content(), "intelli-lease shard=1/1");
    }

    #[test]
    fn guard_fails_once_lost_or_not_renewed() {
        let g = LeaseGuard(Arc::new(GuardState {
            ttl: Duration::from_millis(40),
            renewed: Mutex::new(Instant::now()),
            lost: Mutex::new(None),
            stopping: Mutex::new(None),
        }));
        assert!(g.check().is_ok());
        std::thread::sleep(Duration::from_millis(35));
        assert!(g.check().is_err(), "3/4 of the TTL passed without renewal");
        g.renewed_now();
        assert!(g.check().is_ok());
        g.lose("gone".into());
        assert!(matches!(g.check(), Err(LeaseError::Lost(_))));
    }

    #[test]
    fn a_stopped_guard_refuses_every_next_step() {
        let g = LeaseGuard::unleased();
        assert!(g.check().is_ok());
        g.stop("SIGTERM");
        g.stop("a second signal");
        let err = g.check().expect_err("stopped");
        assert!(
            matches!(&err, LeaseError::Stopping(why) if why == "SIGTERM"),
            "{err}"
        );
    }
}

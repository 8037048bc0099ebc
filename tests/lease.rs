//! The fleet lease against the simulator's Cloudflare DNS, over real sockets: one holder at a
//! time, the holder named in the refusal, a stale lease taken over (judged on the vendor's
//! clock), a holder whose record was taken stops, shard layouts refused, and a race of many
//! appliers with exactly one winner.

mod common;

use std::time::Duration;

use intelli::cloudflare::{CloudflareClient, CloudflareConfig, DnsFilters};
use intelli::http::RetryConfig;
use intelli::lease::{Lease, LeaseConfig, LeaseError, Shard};
use intelli::sim::server::SimHandle;
use secrecy::SecretString;

const ZONE: &str = "intelliservice.io";

async fn sim() -> SimHandle {
    let mut config = common::sim::seeded(11);
    config.rate_limit_scale = 0.01;
    common::sim::start(config).await
}

fn client(sim: &SimHandle) -> CloudflareClient {
    let mut c = CloudflareConfig::new(
        SecretString::from(sim.cloudflare_token()),
        sim.cloudflare_account_id(),
    );
    c.api_base = sim.cloudflare_api_url().parse().expect("api base URL");
    c.retry = RetryConfig {
        max_attempts: 5,
        max_rate_limited: 10,
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        max_wait: Duration::from_secs(10),
        jitter: false,
    };
    CloudflareClient::new(c).expect("client")
}

fn config(ttl: Duration, lock_timeout: Duration, shard: Shard) -> LeaseConfig {
    let mut c = LeaseConfig::new(ZONE, "intelli-", lock_timeout);
    c.ttl = ttl;
    c.poll = Duration::from_millis(100);
    c.shard = shard;
    c
}

fn quiet(_: &str) {}

async fn lease_records(cf: &CloudflareClient, c: &LeaseConfig) -> usize {
    let zone = cf.find_zone(ZONE).await.unwrap().unwrap();
    cf.list_dns_records(
        &zone.id,
        &DnsFilters {
            record_type: Some("TXT".into()),
            name: Some(c.record_name()),
            ..DnsFilters::default()
        },
    )
    .await
    .unwrap()
    .len()
}

#[tokio::test]
async fn one_holder_at_a_time_and_the_refusal_names_it() {
    let sim = sim().await;
    let cf = client(&sim);
    let c = config(Duration::from_secs(60), Duration::ZERO, Shard::WHOLE);
    let held = Lease::acquire(&cf, &c, &quiet)
        .await
        .expect("first takes it");
    assert_eq!(lease_records(&cf, &c).await, 1);
    let owner = held.holder().owner.clone();

    let err = match Lease::acquire(&cf, &c, &quiet).await {
        Err(e) => e,
        Ok(_) => panic!("a second applier took a held lease"),
    };
    let text = err.to_string();
    assert!(matches!(err, LeaseError::Held { .. }), "{text}");
    assert!(text.contains(&owner), "names the holder: {text}");
    assert!(text.contains("since 20"), "says since when: {text}");

    // A waiting applier gets it once the holder releases.
    let waiter = tokio::spawn({
        let cf = cf.clone();
        let c = config(
            Duration::from_secs(60),
            Duration::from_secs(20),
            Shard::WHOLE,
        );
        async move {
            Lease::acquire(&cf, &c, &quiet)
                .await
                .map(|l| l.holder().owner.clone())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    held.release().await.expect("release");
    let second = waiter.await.unwrap().expect("the waiter takes it");
    assert_ne!(second, owner);
    assert_eq!(lease_records(&cf, &c).await, 1);
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_stale_lease_is_taken_over_and_its_holder_stops() {
    let sim = sim().await;
    let cf = client(&sim);
    // A holder that crashed: its lease is never renewed (dropping stops the heartbeat).
    let ttl = Duration::from_secs(2);
    let dead = Lease::acquire(&cf, &config(ttl, Duration::ZERO, Shard::WHOLE), &quiet)
        .await
        .unwrap();
    let dead_guard = dead.guard();
    drop(dead);
    // Live until its TTL passes on the vendor's clock.
    assert!(
        Lease::acquire(&cf, &config(ttl, Duration::ZERO, Shard::WHOLE), &quiet)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let taker = Lease::acquire(&cf, &config(ttl, Duration::ZERO, Shard::WHOLE), &quiet)
        .await
        .expect("a stale lease is taken over");
    assert_eq!(
        lease_records(&cf, &config(ttl, Duration::ZERO, Shard::WHOLE)).await,
        1
    );
    assert!(dead_guard.check().is_err(), "the old holder may not write");

    // A live holder whose record is taken (deleted) notices at its next heartbeat.
    let guard = taker.guard();
    assert!(guard.check().is_ok());
    let zone = cf.find_zone(ZONE).await.unwrap().unwrap();
    let records = cf
        .list_dns_records(
            &zone.id,
            &DnsFilters {
                record_type: Some("TXT".into()),
                ..DnsFilters::default()
            },
        )
        .await
        .unwrap();
    for r in records {
        cf.delete_dns_record(&zone.id, &r.id).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        matches!(guard.check(), Err(LeaseError::Lost(_))),
        "{:?}",
        guard.check()
    );
    // While a live holder renews, its lease stays: the heartbeat moves modified_on.
    let c = config(ttl, Duration::ZERO, Shard::WHOLE);
    let renewing = Lease::acquire(&cf, &c, &quiet).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(renewing.guard().check().is_ok());
    assert!(Lease::acquire(&cf, &c, &quiet).await.is_err());
    renewing.release().await.unwrap();
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn shards_of_one_layout_coexist_and_another_layout_is_refused() {
    let sim = sim().await;
    let cf = client(&sim);
    let ttl = Duration::from_secs(60);
    let shard = |index, count| config(ttl, Duration::ZERO, Shard { index, count });
    let one = Lease::acquire(&cf, &shard(1, 2), &quiet).await.unwrap();
    let two = Lease::acquire(&cf, &shard(2, 2), &quiet)
        .await
        .expect("the other shard of the same layout");
    assert!(matches!(
        Lease::acquire(&cf, &shard(1, 2), &quiet).await,
        Err(LeaseError::Held { .. })
    ));
    for (index, count) in [(1, 3), (1, 1)] {
        match Lease::acquire(&cf, &shard(index, count), &quiet).await {
            Err(LeaseError::ShardLayout { ours, .. }) => assert_eq!(ours, count),
            Err(e) => panic!("{index}/{count}: {e}"),
            Ok(_) => panic!("{index}/{count} taken beside a 2-shard layout"),
        }
    }
    one.release().await.unwrap();
    two.release().await.unwrap();
    assert_eq!(lease_records(&cf, &shard(1, 1)).await, 0);
    Lease::acquire(&cf, &shard(1, 1), &quiet)
        .await
        .expect("free again");
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn of_many_appliers_started_together_exactly_one_wins() {
    let sim = sim().await;
    let cf = client(&sim);
    for round in 0..3 {
        let c = config(Duration::from_secs(60), Duration::ZERO, Shard::WHOLE);
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (cf, c) = (cf.clone(), c.clone());
                tokio::spawn(async move { Lease::acquire(&cf, &c, &quiet).await })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(l) => winners.push(l),
                Err(LeaseError::Held { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        assert_eq!(lease_records(&cf, &c).await, 1);
        for w in winners {
            w.release().await.unwrap();
        }
    }
    sim.shutdown().await.expect("shutdown");
}

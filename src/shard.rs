//! `--shard K/N`: a big fleet split across CI jobs (DESIGN.md §10 and §13).
//!
//! A client belongs to shard `1 + h mod N`, where `h` is the first 8 bytes (little-endian) of
//! the BLAKE3 hash of its slug. The assignment depends on the slug and N only, so it never
//! changes when clients are added or removed, and the N shards of a fleet are disjoint and
//! cover it. What a shard does *not* narrow:
//!
//! - placement of Pages projects over Cloudflare accounts is computed over the whole fleet
//!   (`fleet::placement`), so shards cannot overfill an account;
//! - orphans (projects no client file claims) are judged against the whole fleet, and listed
//!   by shard 1 only, so N plan comments do not repeat them N times;
//! - the lease is per (fleet, shard K/N) (`lease`): the shards of one layout run side by side,
//!   and a holder with a different N is refused.

pub use crate::lease::Shard;

use crate::fleet::ClientSpec;
use crate::plan::Plan;

impl Shard {
    /// Whether `slug` belongs to this shard.
    pub fn contains(&self, slug: &str) -> bool {
        self.count <= 1 || shard_of(slug, self.count) == self.index
    }

    /// Whether this is the whole fleet (1/1).
    pub fn is_whole(&self) -> bool {
        self.count <= 1
    }
}

/// The shard (1-based) `slug` belongs to when the fleet is split in `count`.
pub fn shard_of(slug: &str, count: u32) -> u32 {
    let hash = blake3::hash(slug.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    let h = u64::from_le_bytes(first);
    // `count` is at least 1 (`parse`); the remainder fits in u32.
    (h % u64::from(count.max(1))) as u32 + 1
}

/// `--shard K/N` as clap reads it.
pub fn parse(text: &str) -> Result<Shard, String> {
    let bad = || format!("{text:?} is not a shard: write K/N with 1 <= K <= N, e.g. 2/4");
    let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
    let index: u32 = k.trim().parse().map_err(|_| bad())?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if index < 1 || index > count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// The clients of `selected` in `shard`, in their order.
pub fn select(shard: Shard, selected: Vec<&ClientSpec>) -> Vec<&ClientSpec> {
    selected
        .into_iter()
        .filter(|c| shard.contains(&c.slug))
        .collect()
}

/// Mark `plan` as `shard`'s: the header says so, and orphans stay with shard 1.
pub fn mark(plan: &mut Plan, shard: Shard) {
    if shard.is_whole() {
        plan.shard = None;
        return;
    }
    plan.shard = Some(shard.to_string());
    if shard.index != 1 {
        plan.orphans.clear();
    }
}

/// The selection `apply FILE` works on: a saved plan made with `--shard K/N` is applied under
/// that shard's lease even when `--shard` is not repeated; a different `--shard` is refused.
pub fn for_saved_plan(
    sel: &crate::commands::Selection,
    saved: Option<&std::path::Path>,
    load: impl Fn(&std::path::Path) -> anyhow::Result<Plan>,
) -> anyhow::Result<crate::commands::Selection> {
    let mut sel = sel.clone();
    let Some(path) = saved else {
        return Ok(sel);
    };
    let planned = match load(path)?.shard {
        Some(text) => Some(parse(&text).map_err(anyhow::Error::msg)?),
        None => None,
    };
    match (sel.shard, planned) {
        (Some(given), Some(planned)) if given != planned => anyhow::bail!(
            "{} is the plan of shard {planned}, not of --shard {given}",
            path.display()
        ),
        (None, Some(planned)) => sel.shard = Some(planned),
        (Some(given), None) if !given.is_whole() => anyhow::bail!(
            "{} is a plan of the whole fleet; apply it without --shard",
            path.display()
        ),
        _ => {}
    }
    Ok(sel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn slugs(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("client-{i:04}")).collect()
    }

    #[test]
    fn shards_are_disjoint_cover_the_fleet_and_are_balanced() {
        let all = slugs(1000);
        for n in [1u32, 2, 3, 4, 7] {
            let mut seen = BTreeMap::new();
            for k in 1..=n {
                let shard = Shard { index: k, count: n };
                for s in all.iter().filter(|s| shard.contains(s)) {
                    assert!(
                        seen.insert(s.clone(), k).is_none(),
                        "{s} in two shards of {n}"
                    );
                }
            }
            assert_eq!(seen.len(), all.len(), "every client in one shard of {n}");
            for k in 1..=n {
                let size = seen.values().filter(|v| **v == k).count();
                let even = 1000 / n as usize;
                assert!(
                    size > even * 8 / 10 && size < even * 12 / 10,
                    "shard {k}/{n} has {size} of 1000"
                );
            }
        }
    }

    #[test]
    fn assignment_depends_on_the_slug_and_n_only() {
        // Fixed values: a change of hash would move every client between CI jobs.
        assert_eq!(shard_of("acme", 4), shard_of("acme", 4));
        let before: Vec<u32> = slugs(100).iter().map(|s| shard_of(s, 4)).collect();
        let more = slugs(150);
        let after: Vec<u32> = more.iter().take(100).map(|s| shard_of(s, 4)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn parse_accepts_k_of_n_only() {
        assert_eq!(parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(parse("1/1"), Ok(Shard::WHOLE));
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

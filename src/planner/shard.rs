//! Sweeps split across machines: `--shard I/N` computes every N-th item of
//! a planner's sweep (items `i` with `i mod N = I`) and writes them to a
//! shard document; `kvfleet merge` replays every shard's items into the
//! same planner, whose finishing step (frontier, recommendation, totals)
//! then runs exactly as in a single run — so the merged report is the
//! single run's, byte for byte.
//!
//! Items travel exactly: floats as their IEEE-754 bit patterns, so a
//! replayed item is the computed one bit for bit (infinities included).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::InputError;

/// Most shards a sweep may be split into.
pub const MAX_SHARDS: u32 = 100_000;

/// One part of a sweep: items `i` with `i mod count = index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, 0-based (`I` of `--shard I/N`).
    pub index: u32,
    /// Shards in all (`N`).
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected I/N with 0 ≤ I < N ≤ {MAX_SHARDS} (e.g. 0/4), got `{s}`");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A sweep item that can travel in a shard document, exactly.
pub trait ShardItem: Sized {
    /// The item as JSON (floats as bit patterns, see [`f64_to`]).
    fn to_shard(&self) -> Value;
    /// The item back from [`ShardItem::to_shard`]'s form.
    fn from_shard(v: &Value) -> Result<Self, String>;
}

/// A float as the hex string of its bit pattern (exact, infinities and NaN included).
pub fn f64_to(x: f64) -> Value {
    Value::String(format!("{:016x}", x.to_bits()))
}

/// A float back from [`f64_to`].
pub fn f64_from(v: &Value) -> Result<f64, String> {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .map(f64::from_bits)
        .ok_or_else(|| format!("expected a float's bit pattern, got {v}"))
}

/// An optional float ([`f64_to`], or null).
pub fn opt_f64_to(x: Option<f64>) -> Value {
    x.map_or(Value::Null, f64_to)
}

/// An optional float back from [`opt_f64_to`].
pub fn opt_f64_from(v: &Value) -> Result<Option<f64>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        f64_from(v).map(Some)
    }
}

/// A field of a shard item's object.
pub fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name)
        .ok_or_else(|| format!("shard item has no field `{name}`"))
}

/// A plain (serde) field of a shard item's object.
pub fn plain<T: serde::de::DeserializeOwned>(v: &Value, name: &str) -> Result<T, String> {
    serde_json::from_value(field(v, name)?.clone()).map_err(|e| format!("field `{name}`: {e}"))
}

/// The marker error a sharded run ends with once its items are computed;
/// the front end then reports the shard document instead of a report.
#[derive(Debug)]
pub struct ShardComplete;

impl std::fmt::Display for ShardComplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the shard's items are computed")
    }
}

impl std::error::Error for ShardComplete {}

/// How a planner's sweep items are obtained.
#[derive(Debug, Default)]
pub enum Sweep {
    /// Compute every item (a single run).
    #[default]
    Full,
    /// Compute this shard's items and keep them for the shard document.
    Shard {
        /// Which part.
        shard: Shard,
        /// The computed items by index, and how many the sweep has.
        done: Mutex<(BTreeMap<usize, Value>, usize)>,
    },
    /// Take every item from merged shard documents.
    Replay(BTreeMap<usize, Value>),
}

impl Sweep {
    /// A sweep for `--shard` (`None`: a single run).
    pub fn new(shard: Option<Shard>) -> Sweep {
        match shard {
            None => Sweep::Full,
            Some(shard) => Sweep::Shard {
                shard,
                done: Mutex::new((BTreeMap::new(), 0)),
            },
        }
    }

    /// As [`Sweep::map`], but a single run starts its items costliest
    /// first by `cost` (each thread takes the next when it is free), so
    /// the sweep does not end on one long item started last. The items
    /// come back in their own order, computed exactly as by `map`.
    pub fn map_costliest_first<I, T, F>(
        &self,
        items: &[I],
        cost: impl Fn(&I) -> f64,
        f: F,
    ) -> anyhow::Result<Vec<T>>
    where
        I: Sync,
        T: ShardItem + Send,
        F: Fn(usize, &I) -> anyhow::Result<T> + Sync,
    {
        let Sweep::Full = self else {
            return self.map(items, f);
        };
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| cost(&items[b]).total_cmp(&cost(&items[a])).then(a.cmp(&b)));
        let mut done: Vec<(usize, anyhow::Result<T>)> = order
            .into_iter()
            .par_bridge()
            .map(|i| (i, f(i, &items[i])))
            .collect();
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }

    /// The sweep's items, computed by `f` (in parallel) or replayed. A
    /// sharded sweep computes its own items and then ends the run with
    /// [`ShardComplete`].
    pub fn map<I, T, F>(&self, items: &[I], f: F) -> anyhow::Result<Vec<T>>
    where
        I: Sync,
        T: ShardItem + Send,
        F: Fn(usize, &I) -> anyhow::Result<T> + Sync,
    {
        match self {
            Sweep::Full => items.par_iter().enumerate().map(|(i, x)| f(i, x)).collect(),
            Sweep::Shard { shard, done } => {
                let mine: Vec<(usize, Value)> = items
                    .par_iter()
                    .enumerate()
                    .filter(|(i, _)| *i as u32 % shard.count == shard.index)
                    .map(|(i, x)| Ok((i, f(i, x)?.to_shard())))
                    .collect::<anyhow::Result<_>>()?;
                let mut d = done.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                d.0.extend(mine);
                d.1 = items.len();
                Err(ShardComplete.into())
            }
            Sweep::Replay(got) => {
                if got.len() != items.len() {
                    return Err(InputError::field(
                        "merge",
                        format!(
                            "the shards hold {} items, the sweep has {}",
                            got.len(),
                            items.len()
                        ),
                    )
                    .into());
                }
                (0..items.len())
                    .map(|i| {
                        let v = got.get(&i).ok_or_else(|| {
                            InputError::field("merge", format!("no shard holds item {i}"))
                        })?;
                        T::from_shard(v).map_err(|e| {
                            InputError::field("merge", format!("item {i}: {e}")).into()
                        })
                    })
                    .collect()
            }
        }
    }

    /// A sharded run's items and the sweep's size, once [`Sweep::map`] ran.
    pub fn take_done(&self) -> Option<(Shard, BTreeMap<usize, Value>, usize)> {
        match self {
            Sweep::Shard { shard, done } => {
                let mut d = done.lock().ok()?;
                Some((*shard, std::mem::take(&mut d.0), d.1))
            }
            _ => None,
        }
    }
}

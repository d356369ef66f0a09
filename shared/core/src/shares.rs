//! The models themselves, apart from who the candidates are: the [`Model`]s, a model's
//! exact shares of one conversion among candidates ([`shares`], parts per million summing
//! to exactly [`PPM`]), a value split by them ([`split`], summing to exactly the value),
//! and the [`ModelSplit`] the fold keeps with a conversion several messages could explain.
//!
//! Rational models are computed with integer weights over a common denominator, so their
//! shares are exact; time decay in IEEE 754 doubles, in the order the rules fix, so every
//! implementation that follows them gets the same ppm.

use crate::model::{Millis, Touch};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A whole conversion, in parts per million.
pub const PPM: u32 = 1_000_000;


#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Model {
    LastTouch,
    FirstTouch,
    Linear,
    PositionBased,
    TimeDecay,
}

impl Model {
    pub const ALL: [Model; 5] = [Model::LastTouch, Model::FirstTouch, Model::Linear, Model::PositionBased, Model::TimeDecay];
    /// The models that can credit otherwise than last touch, as a [`ModelSplit`] holds them.
    pub const SPLIT: [Model; 4] = [Model::FirstTouch, Model::Linear, Model::PositionBased, Model::TimeDecay];

    /// The name reports and the CLI use.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::LastTouch => "last_touch",
            Model::FirstTouch => "first_touch",
            Model::Linear => "linear",
            Model::PositionBased => "position_based",
            Model::TimeDecay => "time_decay",
        }
    }

    pub fn parse(name: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|model| model.as_str() == name)
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Each candidate's share of a conversion under `model`, in ppm, in the candidates' order;
/// `times` are the representatives' times, oldest first. The shares sum to exactly
/// [`PPM`] (none when there are no candidates).
pub fn shares(model: Model, times: &[Millis], half_life_ms: Millis) -> Vec<u32> {
    let n = times.len();
    if n == 0 {
        return Vec::new();
    }
    if model == Model::TimeDecay {
        return time_decay_shares(times, half_life_ms);
    }
    // Integer weights over their sum: exact rationals.
    let weights: Vec<u64> = match model {
        Model::LastTouch => (0..n).map(|i| u64::from(i == n - 1)).collect(),
        Model::FirstTouch => (0..n).map(|i| u64::from(i == 0)).collect(),
        Model::Linear => vec![1; n],
        // n >= 3: the ends 0.4 = 2(n-2) / 5(n-2) each, the middles 0.2/(n-2) = 1 / 5(n-2).
        Model::PositionBased if n >= 3 => (0..n).map(|i| if i == 0 || i == n - 1 { 2 * (n as u64 - 2) } else { 1 }).collect(),
        Model::PositionBased => vec![1; n],
        Model::TimeDecay => unreachable!("computed in doubles above"),
    };
    let total: u64 = weights.iter().sum();
    let whole = u64::from(PPM);
    let floors: Vec<u64> = weights.iter().map(|w| whole * w / total).collect();
    // Remainders over the common denominator `total`: comparable as integers.
    let remainders: Vec<u64> = weights.iter().map(|w| whole * w % total).collect();
    let missing = whole - floors.iter().sum::<u64>();
    let mut ppm: Vec<u32> = floors.iter().map(|&s| s as u32).collect();
    for i in largest_first(&remainders, |a, b| a.cmp(b)).into_iter().take(missing as usize) {
        ppm[i] += 1;
    }
    ppm
}

/// `w_i = exp2(-(t_n - t_i) / half_life)`, `W` summed in order, `s_i = floor(1e6 * w_i / W)`
/// and the remainders `1e6 * w_i / W - s_i`, all in doubles.
fn time_decay_shares(times: &[Millis], half_life_ms: Millis) -> Vec<u32> {
    let last = times[times.len() - 1];
    let weights: Vec<f64> = times.iter().map(|&t| (-((last - t) as f64) / half_life_ms as f64).exp2()).collect();
    let total: f64 = weights.iter().fold(0.0, |sum, w| sum + w);
    let exact: Vec<f64> = weights.iter().map(|w| 1_000_000.0 * w / total).collect();
    let floors: Vec<f64> = exact.iter().map(|x| x.floor()).collect();
    let remainders: Vec<f64> = exact.iter().zip(&floors).map(|(x, s)| x - s).collect();
    let mut ppm: Vec<u32> = floors.iter().map(|&s| s as u32).collect();
    let assigned: u64 = ppm.iter().map(|&s| u64::from(s)).sum();
    let missing = u64::from(PPM).saturating_sub(assigned);
    for i in largest_first(&remainders, |a, b| a.total_cmp(b)).into_iter().take(missing as usize) {
        ppm[i] += 1;
    }
    ppm
}

/// Indexes by remainder, largest first; equal remainders: the later index first.
fn largest_first<T>(remainders: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> Vec<usize> {
    let mut indexes: Vec<usize> = (0..remainders.len()).collect();
    indexes.sort_by(|&a, &b| cmp(&remainders[b], &remainders[a]).then(b.cmp(&a)));
    indexes
}

/// `value` (whole units: minor units of an order, millionths of an event's value) split by
/// `ppm`: `floor(value * s_i / 1e6)` each, and the units still missing one each to the
/// largest remainders (`value * s_i mod 1e6`), equal ones to the later candidate. The parts
/// sum to exactly `value` when the shares sum to [`PPM`].
pub fn split(value: i128, ppm: &[u32]) -> Vec<i128> {
    let whole = i128::from(PPM);
    let floors: Vec<i128> = ppm.iter().map(|&s| (value * i128::from(s)).div_euclid(whole)).collect();
    let remainders: Vec<i128> = ppm.iter().map(|&s| (value * i128::from(s)).rem_euclid(whole)).collect();
    let missing = value - floors.iter().sum::<i128>();
    let mut parts = floors;
    if missing > 0 {
        for i in largest_first(&remainders, |a, b| a.cmp(b)).into_iter().take(missing as usize) {
            parts[i] += 1;
        }
    }
    parts
}

/// How a conversion with two or more candidates is credited under the models other than
/// last touch: what the fold keeps with the conversion, so that rollups count every model in
/// the pass that counts last touch and retract exactly what they counted. A conversion
/// with one candidate, an explicit one or none has no split: every model credits it as last
/// touch does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSplit {
    /// The candidates' messages, oldest representative first: the last is last touch's.
    pub messages: Vec<String>,
    /// For each model of [`Model::SPLIT`], in order, each candidate's ppm and credited
    /// value in micros (whole units times the goal's micros per unit).
    pub parts: Vec<Vec<(u32, i64)>>,
}

impl ModelSplit {
    /// The split of a conversion worth `units` whole units of `micros_per_unit` among
    /// `representatives` (oldest first); `None` for fewer than two.
    pub fn of(representatives: &[&Touch], units: i128, micros_per_unit: i64, half_life_ms: Millis) -> Option<ModelSplit> {
        if representatives.len() < 2 {
            return None;
        }
        let times: Vec<Millis> = representatives.iter().map(|touch| touch.ts).collect();
        let parts = Model::SPLIT
            .iter()
            .map(|&model| {
                let ppm = shares(model, &times, half_life_ms);
                let values = split(units, &ppm);
                ppm.into_iter().zip(values).map(|(ppm, value)| (ppm, i64::try_from(value * i128::from(micros_per_unit)).unwrap_or(i64::MAX))).collect()
            })
            .collect();
        Some(ModelSplit { messages: representatives.iter().map(|touch| touch.msg_hash.clone()).collect(), parts })
    }

    /// What each model credits a candidate beyond last touch (which gives the last one the
    /// whole conversion, `value_micros`): `(model, msg_hash, ppm, micros)`, zero ones left
    /// out. Added to last touch's counters they give the model's.
    pub fn shifts(&self, value_micros: i64) -> impl Iterator<Item = (Model, &str, i64, i64)> + '_ {
        let last = self.messages.len().saturating_sub(1);
        Model::SPLIT.iter().zip(&self.parts).flat_map(move |(&model, parts)| {
            parts.iter().enumerate().filter_map(move |(i, &(ppm, micros))| {
                let (ppm, micros) = if i == last { (i64::from(ppm) - i64::from(PPM), micros - value_micros) } else { (i64::from(ppm), micros) };
                (ppm != 0 || micros != 0).then(|| (model, self.messages[i].as_str(), ppm, micros))
            })
        })
    }
}

//! What arrives more than once: another tenant's `event_id`s reused here, client retries,
//! records that reuse an `event_id` with other content, and re-registered messages. Drawn
//! after everything else, so that what was drawn before stays as it was.

use super::{Repeat, TenantGen, SECOND};
use rand::seq::index;
use rand::Rng;
use touchstone_core::model::{BadgeAction, Message, Record};

impl TenantGen<'_> {
    /// Reuses another tenant's `event_id`s: per tenant they are distinct records.
    pub(super) fn share_ids(&mut self, shared_ids: &[String]) {
        let picks = index::sample(&mut self.rng, self.records.len(), shared_ids.len().min(self.records.len()));
        for (i, id) in picks.into_iter().zip(shared_ids) {
            id.clone_into(event_id_mut(&mut self.records[i]));
        }
    }

    /// Client retries (the same record again, once or twice) and records that reuse an
    /// `event_id` with other content; both arrive after the original.
    pub(super) fn repeats(&mut self) -> Vec<Repeat> {
        let n = self.records.len();
        let mut repeats = Vec::new();
        for of in index::sample(&mut self.rng, n, (n * 12 / 1000).max(5)) {
            let times = if self.rng.random_bool(0.12) { 2 } else { 1 };
            for _ in 0..times {
                repeats.push(Repeat { of, record: self.records[of].clone() });
            }
        }
        for of in index::sample(&mut self.rng, n, (n * 3 / 1000).max(3)) {
            let original = self.records[of].clone();
            let record = self.conflicting(&original);
            debug_assert_ne!(record, original);
            repeats.push(Repeat { of, record });
        }
        repeats
    }

    /// The same `event_id` with other content: what a buggy client sends when it reuses ids.
    fn conflicting(&mut self, original: &Record) -> Record {
        let mut record = original.clone();
        match &mut record {
            Record::Touch(t) => t.ts += self.rng.random_range(1..5 * SECOND),
            Record::Event(e) => e.value_micros = Some(e.value_micros.unwrap_or(0) * 2 + 1_000_000),
            Record::Order(o) => o.amount_minor += self.rng.random_range(100..5_000),
            Record::Badge(b) => {
                b.action = match b.action {
                    BadgeAction::Earned => BadgeAction::Revoked,
                    BadgeAction::Revoked | BadgeAction::Expired => BadgeAction::Earned,
                }
            }
            Record::Message(m) => m.sent_at += 1,
        }
        record
    }

    /// A retried registration and one that names a registered `msg_hash` with another
    /// campaign and an excluded tag: the first registration stands.
    pub(super) fn message_repeats(&mut self) -> Vec<Message> {
        let registered: Vec<usize> = self.creditable();
        let (retried, changed) = self.two_distinct(&registered);
        let retried = self.sent[retried].message.clone();
        let mut changed = self.sent[changed].message.clone();
        changed.campaign_id = "re-registered".to_owned();
        changed.tags.push(self.profile.excluded_tags[0].to_owned());
        vec![retried, changed]
    }
}

fn event_id_mut(record: &mut Record) -> &mut String {
    match record {
        Record::Touch(t) => &mut t.event_id,
        Record::Event(e) => &mut e.event_id,
        Record::Order(o) => &mut o.event_id,
        Record::Badge(b) => &mut b.event_id,
        // Not in records.jsonl; its msg_hash plays the part of the event_id.
        Record::Message(m) => &mut m.msg_hash,
    }
}

//! The messages a tenant sends on all four channels: campaign blasts, triggered messages
//! without a campaign, transactional ones with an excluded tag, and a few never registered
//! (their touches and explicit `msg_hash`es name an unknown message).

use super::{pick_weighted, Sent, TenantGen};
use crate::profiles::{DAY, MINUTE};
use rand::Rng;
use touchstone_core::model::{Channel, Message};

impl TenantGen<'_> {
    /// The tenant's messages (the registered ones, then a few never registered), sorted by
    /// when they went out: every kind and channel, and one for each campaign of its own.
    pub(super) fn messages(&mut self, target: usize) {
        // Every campaign of the tenant's own gets a registered message (two of the first six
        // have none).
        let registered = (target / 100).max(12).max(self.campaigns_left() + 2);
        let unregistered = 1 + target / 1500;
        for i in 0..registered + unregistered {
            let channel = if i < Channel::ALL.len() {
                Channel::ALL[i]
            } else {
                let weights = self.profile.channel_weights;
                *pick_weighted(&mut self.rng, Channel::ALL, |c| channel_weight(weights, *c))
            };
            // The first few are fixed so that every tenant has each kind; the rest are drawn.
            let class = match i {
                0..4 => Class::Campaign,
                4 => Class::Transactional,
                5 => Class::Triggered,
                _ if i >= registered => Class::Campaign,
                // As many messages left as campaigns without one: they all go to campaigns.
                _ if registered - i <= self.campaigns_left() => Class::Campaign,
                _ => match self.rng.random_range(0..100) {
                    0..12 => Class::Transactional,
                    12..24 => Class::Triggered,
                    _ => Class::Campaign,
                },
            };
            let (campaign_id, tags, spread) = match class {
                Class::Campaign => {
                    let campaign = self.campaign(i < registered);
                    let tags: &[&str] = match self.rng.random_range(0..4) {
                        0 => &["promo"],
                        1 => &["promo", "weekend"],
                        2 => &["newsletter"],
                        _ => &[],
                    };
                    (campaign, tags, 10 * MINUTE)
                }
                Class::Transactional => {
                    let excluded = self.choose(self.profile.excluded_tags);
                    let tags: &[&str] = match (excluded, self.rng.random_range(0..3)) {
                        ("transactional", 0) => &["transactional", "receipt"],
                        ("transactional", 1) => &["transactional", "password_reset"],
                        ("transactional", _) => &["transactional", "delivery_notice"],
                        (_, _) => &["system", "maintenance"],
                    };
                    (String::new(), tags, 14 * DAY)
                }
                Class::Triggered => {
                    let tags: &[&str] = if self.rng.random_bool(0.5) { &["triggered"] } else { &[] };
                    (String::new(), tags, 10 * DAY)
                }
            };
            let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
            let excluded = self.config.is_excluded(&tags);
            let message = Message {
                tenant: self.tenant.clone(),
                msg_hash: format!("{:016x}{:08x}", self.rng.random::<u64>(), self.rng.random::<u32>()),
                campaign_id,
                channel,
                tags,
                sent_at: self.random_ts(self.days_before_end(6)),
            };
            self.sent.push(Sent { message, registered: i < registered, excluded, spread });
        }
        // Registration order: as the sender sent them.
        self.sent.sort_by_key(|s| s.message.sent_at);
    }

    /// A campaign id for a campaign message: with campaigns of its own, the tenant gives each
    /// a registered message first (in order) and then draws; otherwise the profile's are drawn.
    fn campaign(&mut self, registered: bool) -> String {
        match &self.campaigns {
            None => self.choose(self.profile.campaigns).to_owned(),
            Some(list) if registered && self.next_campaign < list.len() => {
                self.next_campaign += 1;
                list[self.next_campaign - 1].clone()
            }
            Some(list) => list[self.rng.random_range(0..list.len())].clone(),
        }
    }

    /// Campaigns of its own that have no registered message yet.
    fn campaigns_left(&self) -> usize {
        self.campaigns.as_ref().map_or(0, |list| list.len() - self.next_campaign)
    }
}

#[derive(Clone, Copy)]
enum Class {
    Campaign,
    Transactional,
    Triggered,
}

fn channel_weight(weights: [u32; 4], channel: Channel) -> u32 {
    match channel {
        Channel::Push => weights[0],
        Channel::Email => weights[1],
        Channel::Sms => weights[2],
        Channel::InApp => weights[3],
    }
}

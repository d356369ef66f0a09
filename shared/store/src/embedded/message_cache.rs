//! Registered messages kept in memory once read. A message's registration is immutable
//! (the first arrival of its `msg_hash` stands), so a cached copy is never stale; only
//! messages found are kept (one not registered yet may be registered at any moment).
//! Attribution looks the messages of every step's touches up, mostly the same ones.

use crate::support::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use touchstone_core::model::Message;

/// Messages kept at most; past it the cache starts over (a tenant with more live messages
/// than this reads some again). About 200 bytes each: ~10 MiB.
const MAX_MESSAGES: usize = 50_000;

/// By the message's key in the `messages` table.
#[derive(Default)]
pub(super) struct MessageCache(Mutex<HashMap<Vec<u8>, Message>>);

impl MessageCache {
    pub(super) fn get(&self, key: &[u8]) -> Option<Message> {
        lock(&self.0).get(key).cloned()
    }

    pub(super) fn insert(&self, key: Vec<u8>, message: &Message) {
        let mut messages = lock(&self.0);
        if messages.len() >= MAX_MESSAGES {
            messages.clear();
        }
        messages.insert(key, message.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchstone_core::model::Channel;

    #[test]
    fn keeps_what_it_is_given_up_to_its_bound() {
        let cache = MessageCache::default();
        let message = |i: usize| Message {
            tenant: "t".into(),
            msg_hash: format!("m{i}"),
            campaign_id: "c".into(),
            channel: Channel::ALL[0],
            tags: vec![],
            sent_at: 0,
        };
        cache.insert(b"k0".to_vec(), &message(0));
        assert_eq!(cache.get(b"k0"), Some(message(0)));
        assert_eq!(cache.get(b"k1"), None);
        for i in 1..=MAX_MESSAGES {
            cache.insert(format!("k{i}").into_bytes(), &message(i));
        }
        assert!(lock(&cache.0).len() <= MAX_MESSAGES, "bounded");
        assert_eq!(cache.get(format!("k{MAX_MESSAGES}").as_bytes()), Some(message(MAX_MESSAGES)), "the newest is kept");
    }
}

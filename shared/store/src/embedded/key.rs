//! Composite keys whose byte order is the order of their components.
//!
//! - strings: a u32 big-endian length, then the bytes. No byte is reserved, so ids holding
//!   any bytes cannot collide, and a key built from whole components is a prefix only of
//!   keys with exactly those components. (Strings sort by length first; no read here ranges
//!   over strings, only over times and sequence numbers.)
//! - times (`i64`): big-endian with the sign bit flipped, so negative times sort first.
//! - tags: one byte.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new() -> Key {
        Key(Vec::with_capacity(64))
    }

    /// A key built in `buffer`, emptied first (to reuse its allocation).
    pub fn in_buffer(mut buffer: Vec<u8>) -> Key {
        buffer.clear();
        Key(buffer)
    }

    pub fn str(mut self, text: &str) -> Key {
        // Keys are capped at 64 KiB by fjall, so a string's length always fits.
        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(text.as_bytes());
        self
    }

    pub fn time(mut self, ts: i64) -> Key {
        self.0.extend_from_slice(&((ts as u64) ^ (1 << 63)).to_be_bytes());
        self
    }

    pub fn tag(mut self, tag: u8) -> Key {
        self.0.push(tag);
        self
    }

    /// A time sorting newest first: later times give smaller keys.
    pub fn time_desc(self, ts: i64) -> Key {
        self.time(!ts)
    }

    /// A string sorting in descending byte order, as the last component: each byte
    /// inverted, with 0 escaped and a terminator, so a string sorts after every longer
    /// string it is a prefix of (it is the ascending order-preserving, prefix-free encoding
    /// of the string, `0x00` as `0x00 0xFF` and the end as `0x00 0x00`, with every byte
    /// inverted).
    pub fn str_desc(mut self, text: &str) -> Key {
        for &byte in text.as_bytes() {
            if byte == 0 {
                self.0.extend_from_slice(&[0xFF, 0x00]);
            } else {
                self.0.push(!byte);
            }
        }
        self.0.extend_from_slice(&[0xFF, 0xFF]);
        self
    }

    /// Raw bytes, only as the last component (they carry no length).
    pub fn bytes(mut self, bytes: &[u8]) -> Key {
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

/// The time at the start of `bytes` as [`Key::time`] wrote it, and the rest.
pub fn read_time(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (time, rest) = bytes.split_first_chunk::<8>()?;
    Some(((u64::from_be_bytes(*time) ^ (1 << 63)) as i64, rest))
}

/// The string at the start of `bytes` as [`Key::str`] wrote it, and the rest.
pub fn read_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let (text, rest) = rest.split_at_checked(u32::from_be_bytes(*len) as usize)?;
    Some((std::str::from_utf8(text).ok()?, rest))
}

/// The least key above every key starting with `prefix`; `None` when there is none.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descending_strings_sort_in_reverse_byte_order() {
        let mut ids = vec!["", "a", "ab", "a\0", "a\0b", "b", "\0", "\u{ff}", "rule:x", "expiry:rule:x", "z\u{7f}"];
        let mut keys: Vec<(Vec<u8>, &str)> = ids.iter().map(|id| (Key::new().str_desc(id).into_vec(), *id)).collect();
        keys.sort();
        ids.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
        assert_eq!(keys.into_iter().map(|(_, id)| id).collect::<Vec<_>>(), ids);
    }

    #[test]
    fn descending_times_sort_newest_first() {
        let times = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        let keys: Vec<Vec<u8>> = times.iter().map(|&ts| Key::new().time_desc(ts).into_vec()).collect();
        assert!(keys.windows(2).all(|pair| pair[0] > pair[1]));
    }

    #[test]
    fn components_read_back_as_written() {
        let key = Key::new().time(-5).str("campaign").tag(b'x');
        let (time, rest) = read_time(key.as_bytes()).unwrap();
        let (text, rest) = read_str(rest).unwrap();
        assert_eq!((time, text, rest), (-5, "campaign", &b"x"[..]));
        assert_eq!(read_str(&[0, 0, 0, 9, b'a']), None, "a length past the end");
        assert_eq!(read_time(&[1, 2]), None);
    }

    #[test]
    fn times_sort_numerically_negative_first() {
        let times = [i64::MIN, -86_400_000, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        let keys: Vec<Vec<u8>> = times.iter().map(|&ts| Key::new().time(ts).into_vec()).collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
    }

    #[test]
    fn string_components_cannot_run_into_each_other() {
        let split = |a: &str, b: &str| Key::new().str(a).str(b).into_vec();
        assert_ne!(split("ab", "c"), split("a", "bc"));
        assert_ne!(split("a\0", ""), split("a", "\0"));
        // A whole-component prefix matches only keys with that very component.
        let tenant = Key::new().str("t").into_vec();
        assert!(!Key::new().str("t2").str("x").into_vec().starts_with(&tenant));
        assert!(Key::new().str("t").str("x").into_vec().starts_with(&tenant));
    }

    #[test]
    fn time_order_wins_over_later_components() {
        let key = |ts: i64, id: &str| Key::new().str("t").time(ts).str(id).into_vec();
        assert!(key(-1, "zzzz") < key(0, "a"));
        assert!(key(5, "b") < key(6, ""));
    }

    #[test]
    fn prefix_end_bounds_exactly_the_prefixed_keys() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 255, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255]), None);
        let end = prefix_end(&[1, 255]).unwrap();
        assert!(vec![1, 255, 255, 255] < end && end <= vec![2]);
    }
}

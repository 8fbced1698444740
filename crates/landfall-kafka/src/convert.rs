//! From librdkafka's borrowed message to the owned [`KafkaRecord`] the sink takes, without ever
//! panicking the consumer thread on what a producer sent.
//!
//! Header keys: rust-rdkafka 0.39 reads a header key with `CStr::to_str().unwrap()` inside
//! `BorrowedHeaders::try_get` (and `get`, `iter` and `OwnedHeaders` go through it), so a key that
//! is not valid UTF-8 panics there. No safe API hands out the raw key bytes, and this workspace
//! forbids `unsafe`, so the key cannot be kept even lossily. The record is kept, and the header
//! becomes an entry named [`INVALID_HEADER_KEY`] without a value (librdkafka returns the value
//! only together with the key); the poll loop logs the record's topic, partition and offset.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Once};

use bytes::Bytes;
use landfall_core::KafkaRecord;
use rdkafka::message::{BorrowedMessage, Headers, Message};

/// The name a header gets when its key is not valid UTF-8 (its value is unreadable too).
pub const INVALID_HEADER_KEY: &str = "landfall.invalid-utf8-header-key";

/// A converted record and how many of its header keys were not valid UTF-8.
pub(crate) struct Converted {
    pub record: KafkaRecord,
    pub invalid_header_keys: usize,
}

pub(crate) fn to_record(m: &BorrowedMessage<'_>, topic: &Arc<str>) -> Converted {
    let (headers, invalid_header_keys) = m.headers().map(headers_of).unwrap_or_default();
    Converted {
        record: KafkaRecord {
            topic: topic.clone(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key().map(Bytes::copy_from_slice),
            value: m.payload().map(Bytes::copy_from_slice),
            headers,
        },
        invalid_header_keys,
    }
}

type HeaderList = Vec<(String, Option<Bytes>)>;

/// Every header in order; a header whose key is not valid UTF-8 becomes
/// `(INVALID_HEADER_KEY, None)` and is counted.
pub(crate) fn headers_of<H: Headers>(h: &H) -> (HeaderList, usize) {
    let mut out = Vec::with_capacity(h.count());
    let mut invalid = 0;
    for idx in 0..h.count() {
        match read_quietly(|| {
            h.try_get(idx)
                .map(|h| (h.key.to_string(), h.value.map(Bytes::copy_from_slice)))
        }) {
            Some(Some(entry)) => out.push(entry),
            // Below `count`, librdkafka always has a header.
            Some(None) => {}
            None => {
                invalid += 1;
                out.push((INVALID_HEADER_KEY.to_string(), None));
            }
        }
    }
    (out, invalid)
}

thread_local! {
    /// Set while this thread reads a header: a panic then is rust-rdkafka's `unwrap` on a key
    /// that is not UTF-8, expected and handled, not worth a panic message on stderr.
    static READING_HEADER: Cell<bool> = const { Cell::new(false) };
}

/// Run `f`, turning a panic into `None`. The read only copies out of librdkafka's buffers and
/// holds no lock, so nothing is left half-done when it unwinds.
fn read_quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        // Chain, don't replace: every other panic is reported as before.
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !READING_HEADER.with(Cell::get) {
                previous(info);
            }
        }));
    });
    READING_HEADER.with(|r| r.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    READING_HEADER.with(|r| r.set(false));
    r.ok()
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use rdkafka::message::{Header, OwnedHeaders};

    use super::*;

    /// Headers whose keys are raw C strings, read the way rust-rdkafka 0.39's
    /// `BorrowedHeaders::try_get` reads them: `CStr::from_ptr(name).to_str().unwrap()`.
    /// (A real message cannot be built with such a key without `unsafe`: every safe producer API
    /// takes the key as `&str`.)
    struct RawHeaders(Vec<(&'static [u8], Option<&'static [u8]>)>);

    impl Headers for RawHeaders {
        fn count(&self) -> usize {
            self.0.len()
        }

        fn try_get(&self, idx: usize) -> Option<Header<'_, &[u8]>> {
            let (key, value) = self.0.get(idx)?;
            Some(Header {
                key: CStr::from_bytes_with_nul(key)
                    .expect("nul-terminated")
                    .to_str()
                    .unwrap(),
                value: *value,
            })
        }
    }

    #[test]
    fn a_header_key_that_is_not_utf8_keeps_the_record_and_says_so() {
        let raw = RawHeaders(vec![
            (b"a\0", Some(b"1")),
            (b"b\xff\xfe\0", Some(b"2")),
            (b"c\0", None),
        ]);
        let (headers, invalid) = headers_of(&raw);
        assert_eq!(invalid, 1);
        assert_eq!(
            headers,
            vec![
                ("a".to_string(), Some(Bytes::from_static(b"1"))),
                (INVALID_HEADER_KEY.to_string(), None),
                ("c".to_string(), None),
            ]
        );
        // And the thread goes on: the next read works, panics elsewhere still propagate.
        assert_eq!(headers_of(&RawHeaders(vec![(b"d\0", None)])).1, 0);
        assert!(panic::catch_unwind(|| panic!("not a header")).is_err());
    }

    #[test]
    fn rdkafka_headers_convert_in_order_with_repeats() {
        let h = OwnedHeaders::new()
            .insert(Header {
                key: "k",
                value: Some("v1"),
            })
            .insert(Header {
                key: "k",
                value: Some("v2"),
            })
            .insert::<str>(Header {
                key: "null",
                value: None,
            });
        let (headers, invalid) = headers_of(&h);
        assert_eq!(invalid, 0);
        assert_eq!(
            headers,
            vec![
                ("k".to_string(), Some(Bytes::from_static(b"v1"))),
                ("k".to_string(), Some(Bytes::from_static(b"v2"))),
                ("null".to_string(), None),
            ]
        );
    }
}

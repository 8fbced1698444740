//! Record shapes: what the benchmarks produce.
//!
//! - [`Shape::Small`] (~150 B) and [`Shape::Medium`] (~500 B): realistic events with 12 top-level
//!   fields, nested objects, a list and timestamps, with the cardinalities real event streams
//!   have (small enums, ids of moderate cardinality, unique event ids, a timestamp that moves
//!   with the sequence number);
//! - [`Shape::Padded`]: the eight-field event of [`event_record`] padded to an exact size with
//!   text and hex ids (the 1 KiB record of the earlier benchmarks).
//!
//! Every generator is a pure function of the sequence number (splitmix64), so every run
//! produces the same bytes. Each shape declares its schema in sink-config syntax.

use std::fmt::Write as _;

use crate::{event_record, mix, timestamp_ms, DECLARED_FIELDS};

/// What records look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// ~150 B compact event (one- and two-letter keys, timestamp as epoch microseconds): 12
    /// fields, two nested objects, a list.
    Small,
    /// ~500 B event (descriptive keys, RFC 3339 timestamps): 12 fields, three nested objects,
    /// a list of 0–3 item objects.
    Medium,
    /// The padded eight-field event of [`event_record`], exactly this many bytes.
    Padded(usize),
}

impl Shape {
    /// Short name for tables and file names: `small`, `medium`, `padded1024`.
    pub fn name(self) -> String {
        match self {
            Shape::Small => "small".into(),
            Shape::Medium => "medium".into(),
            Shape::Padded(n) => format!("padded{n}"),
        }
    }

    /// The value of record `seq`.
    pub fn record(self, seq: u64) -> String {
        match self {
            Shape::Small => small_record(seq),
            Shape::Medium => medium_record(seq),
            Shape::Padded(n) => event_record(seq, n),
        }
    }

    /// The declared schema of this shape's records, as the body of `[format] fields = [...]`.
    pub fn declared_fields(self) -> &'static str {
        match self {
            Shape::Small => SMALL_FIELDS,
            Shape::Medium => MEDIUM_FIELDS,
            Shape::Padded(_) => DECLARED_FIELDS,
        }
    }

    /// The sizes this shape's records fall in (inclusive), for tests and sanity checks.
    pub fn size_band(self) -> (usize, usize) {
        match self {
            Shape::Small => (130, 175),
            Shape::Medium => (380, 640),
            Shape::Padded(n) => (n, n),
        }
    }
}

const EVENT_TYPES: [&str; 8] = [
    "page_view",
    "page_view",
    "page_view",
    "click",
    "add_to_cart",
    "search",
    "checkout",
    "purchase",
];
const SHORT_TYPES: [&str; 8] = ["pv", "pv", "pv", "ck", "ac", "sr", "co", "pu"];
const COUNTRIES: [&str; 12] = [
    "DE", "DE", "US", "US", "FR", "GB", "NL", "SE", "PL", "ES", "IT", "JP",
];
const PLANS: [&str; 3] = ["free", "pro", "team"];
const CURRENCIES: [&str; 4] = ["EUR", "EUR", "USD", "GBP"];
const OS: [(&str, [&str; 3]); 3] = [
    ("ios", ["17.6", "18.1", "18.2"]),
    ("android", ["13", "14", "15"]),
    ("web", ["chrome", "firefox", "safari"]),
];
const APP_VERSIONS: [&str; 6] = ["4.2.1", "4.2.0", "4.1.7", "4.1.3", "4.0.9", "3.9.12"];
const PAGES: [&str; 8] = [
    "/",
    "/c/shoes/running",
    "/c/shoes/trail",
    "/c/apparel/jackets",
    "/p/{sku}",
    "/p/{sku}",
    "/cart",
    "/search",
];
const REFERRERS: [&str; 5] = [
    "",
    "https://www.google.com/",
    "https://www.google.com/",
    "https://t.co/",
    "https://newsletter.example.com/",
];

/// Users: moderate cardinality.
const USERS: u64 = 50_000;
/// A user's session changes every this many of the user's events (by sequence block).
const SESSION_BLOCK: u64 = 4_096;

/// Epoch microseconds of record `seq`'s event time: its Kafka timestamp ([`timestamp_ms`])
/// minus up to 5 s of client-side delay, kept inside the base hour.
fn event_time_us(seq: u64, r: u64) -> i64 {
    let ts = timestamp_ms(seq) * 1000 - (r % 5_000_000) as i64;
    ts.max(crate::BASE_TIMESTAMP_MS * 1000)
}

/// `2026-11-21T10:mm:ss.mmmZ` for epoch microseconds inside the base hour's day.
fn rfc3339_ms(us: i64) -> String {
    let ms = us / 1000;
    let day_ms = ms.rem_euclid(86_400_000);
    format!(
        "2026-11-21T{:02}:{:02}:{:02}.{:03}Z",
        day_ms / 3_600_000,
        (day_ms / 60_000) % 60,
        (day_ms / 1000) % 60,
        day_ms % 1000
    )
}

fn pick<T: Copy>(items: &[T], r: u64) -> T {
    items[(r % items.len() as u64) as usize]
}

const SMALL_FIELDS: &str = r#"  { name = "id", type = "string", nullable = false },
  { name = "t", type = "timestamp" },
  { name = "e", type = "string" },
  { name = "u", type = "struct<id:int64,c:string>" },
  { name = "s", type = "int64" },
  { name = "d", type = "struct<os:string>" },
  { name = "a", type = "int64" },
  { name = "c", type = "string" },
  { name = "q", type = "list<int32>" },
  { name = "ok", type = "bool" },
  { name = "n", type = "int64", nullable = false },
  { name = "v", type = "int32" },
"#;

/// ~150 B: what a mobile SDK sends when bytes count — one- and two-letter keys, the time as
/// epoch microseconds, the amount in cents. Twelve fields with a nested object and a timestamp
/// do not get much smaller than this: the keys, quotes and separators alone take ~75 B.
fn small_record(seq: u64) -> String {
    let r = mix(seq ^ 0x5EED_0001);
    let r2 = mix(r);
    let user = r % USERS;
    let (os, _) = pick(&OS, r >> 17);
    let mut q = String::new();
    for i in 0..1 + (r2 >> 7) % 3 {
        if i > 0 {
            q.push(',');
        }
        write!(q, "{}", 1 + (mix(r2 ^ i) % 5)).expect("write to a String");
    }
    format!(
        r#"{{"id":"{:08x}","t":{},"e":"{}","u":{{"id":{user},"c":"{}"}},"s":{},"d":{{"os":"{}"}},"a":{},"c":"{}","q":[{q}],"ok":{},"n":{seq},"v":2}}"#,
        r2 as u32,
        event_time_us(seq, r),
        pick(&SHORT_TYPES, r >> 20),
        pick(&COUNTRIES, r >> 24),
        (user * 7 + seq / SESSION_BLOCK) % 10_000,
        &os[..3],
        (r >> 32) % 20_000,
        pick(&CURRENCIES, r >> 44),
        (r >> 50) % 50 != 0,
    )
}

const MEDIUM_FIELDS: &str = r#"  { name = "event_id", type = "string", nullable = false },
  { name = "ts", type = "timestamp" },
  { name = "type", type = "string" },
  { name = "user", type = "struct<id:int64,country:string,plan:string,signup_ts:timestamp>" },
  { name = "session", type = "string" },
  { name = "device", type = "struct<os:string,os_version:string,app_version:string,screen:struct<w:int32,h:int32>>" },
  { name = "page", type = "struct<path:string,referrer:string,query:string>" },
  { name = "amount", type = "float64" },
  { name = "currency", type = "string" },
  { name = "items", type = "list<struct<sku:string,qty:int32,price:float64>>" },
  { name = "ok", type = "bool" },
  { name = "seq", type = "int64", nullable = false },
"#;

/// ~500 B: a web/app analytics event as a backend emits it.
fn medium_record(seq: u64) -> String {
    let r = mix(seq ^ 0x5EED_0002);
    let r2 = mix(r);
    let r3 = mix(r2);
    let user = r % USERS;
    let ts = event_time_us(seq, r);
    // Sign-up somewhere in the two years before; a pure function of the user.
    let signup = crate::BASE_TIMESTAMP_MS * 1000 - (mix(user) % 63_072_000_000) as i64 * 1000;
    let signup = chrono_free_date(signup);
    let (os, versions) = pick(&OS, r >> 17);
    let (w, h) = pick(
        &[(390, 844), (412, 915), (1920, 1080), (1440, 900)],
        r >> 21,
    );
    let sku = 10_000 + (r3 % 2_000);
    let path = pick(&PAGES, r >> 25).replace("{sku}", &format!("SKU-{sku}"));
    let query = if path == "/search" {
        format!(
            "q={}&page={}",
            pick(&["trail", "rain+jacket", "socks", "gift"], r3 >> 9),
            1 + (r3 >> 12) % 4
        )
    } else {
        String::new()
    };
    let mut items = String::new();
    let mut amount_cents = 0u64;
    for i in 0..(r2 >> 3) % 4 {
        let x = mix(r3 ^ i);
        let price = 499 + x % 15_000;
        let qty = 1 + (x >> 20) % 3;
        amount_cents += price * qty;
        if i > 0 {
            items.push(',');
        }
        write!(
            items,
            r#"{{"sku":"SKU-{}","qty":{qty},"price":{}.{:02}}}"#,
            10_000 + (x >> 30) % 2_000,
            price / 100,
            price % 100
        )
        .expect("write to a String");
    }
    format!(
        r#"{{"event_id":"{:016x}{:016x}","ts":"{}","type":"{}","user":{{"id":{},"country":"{}","plan":"{}","signup_ts":"{signup}"}},"session":"{:016x}","device":{{"os":"{os}","os_version":"{}","app_version":"{}","screen":{{"w":{w},"h":{h}}}}},"page":{{"path":"{path}","referrer":"{}","query":"{query}"}},"amount":{}.{:02},"currency":"{}","items":[{items}],"ok":{},"seq":{seq}}}"#,
        r2,
        r3,
        rfc3339_ms(ts),
        pick(&EVENT_TYPES, r >> 20),
        1_000_000 + user,
        pick(&COUNTRIES, r >> 24),
        pick(&PLANS, r >> 28),
        mix(user ^ (seq / SESSION_BLOCK)),
        pick(&versions, r >> 30),
        pick(&APP_VERSIONS, r >> 33),
        pick(&REFERRERS, r >> 36),
        amount_cents / 100,
        amount_cents % 100,
        pick(&CURRENCIES, r >> 44),
        (r >> 50) % 50 != 0,
    )
}

/// RFC 3339 (seconds) of epoch microseconds, civil-from-days without a date library.
fn chrono_free_date(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        tod / 3600,
        (tod / 60) % 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            chrono_free_date(crate::BASE_TIMESTAMP_MS * 1000),
            "2026-11-21T10:00:00Z"
        );
        assert_eq!(chrono_free_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            chrono_free_date(951_782_400_000_000),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339_ms(crate::BASE_TIMESTAMP_MS * 1000 + 61_001_000),
            "2026-11-21T10:01:01.001Z"
        );
    }
}

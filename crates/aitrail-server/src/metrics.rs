//! Prometheus metrics: events ingested, request batch sizes, commit latency, and the result
//! of the last verification.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicI64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LogLabel {
    pub log: String,
}

pub struct Metrics {
    registry: Registry,
    pub events_ingested: Family<LogLabel, Counter>,
    pub duplicates: Family<LogLabel, Counter>,
    pub rejected_requests: Counter,
    pub batch_size: Histogram,
    pub commit_seconds: Histogram,
    pub verify_ok: Family<LogLabel, Gauge>,
    pub verify_entries: Family<LogLabel, Gauge>,
    pub verify_timestamp: Family<LogLabel, Gauge<i64, AtomicI64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("aitrail");
        let events_ingested = Family::<LogLabel, Counter>::default();
        registry.register(
            "events_ingested",
            "Events appended to the trail",
            events_ingested.clone(),
        );
        let duplicates = Family::<LogLabel, Counter>::default();
        registry.register(
            "events_duplicate",
            "Events sent again with an id already recorded (nothing written)",
            duplicates.clone(),
        );
        let rejected_requests = Counter::default();
        registry.register(
            "requests_rejected",
            "Ingest requests refused whole (bad input, conflicts)",
            rejected_requests.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 4.0, 8));
        registry.register(
            "ingest_batch_size",
            "Events per ingest request",
            batch_size.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "commit_latency_seconds",
            "Time from an ingest request's events reaching the sequencer to their durable commit",
            commit_seconds.clone(),
        );
        let verify_ok = Family::<LogLabel, Gauge>::default();
        registry.register(
            "last_verify_ok",
            "1 when the last verification found the log intact, 0 when it found problems",
            verify_ok.clone(),
        );
        let verify_entries = Family::<LogLabel, Gauge>::default();
        registry.register(
            "last_verify_entries",
            "Entries checked by the last verification",
            verify_entries.clone(),
        );
        let verify_timestamp = Family::<LogLabel, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "last_verify_timestamp_seconds",
            "Unix time of the last verification",
            verify_timestamp.clone(),
        );
        Metrics {
            registry,
            events_ingested,
            duplicates,
            rejected_requests,
            batch_size,
            commit_seconds,
            verify_ok,
            verify_entries,
            verify_timestamp,
        }
    }

    /// Records a verification result.
    pub fn verified(&self, log: &str, ok: bool, entries: u64, at_unix: i64) {
        let l = LogLabel {
            log: log.to_owned(),
        };
        self.verify_ok.get_or_create(&l).set(i64::from(ok));
        self.verify_entries.get_or_create(&l).set(entries as i64);
        self.verify_timestamp.get_or_create(&l).set(at_unix);
    }

    /// The last verification of `log` since start: (ok, entries, Unix seconds), if any ran.
    pub fn last_verification(&self, log: &str) -> Option<(bool, u64, i64)> {
        let l = LogLabel {
            log: log.to_owned(),
        };
        let at = self.verify_timestamp.get(&l)?.get();
        let ok = self.verify_ok.get(&l)?.get() == 1;
        let entries = self.verify_entries.get(&l)?.get();
        Some((ok, u64::try_from(entries).unwrap_or(0), at))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

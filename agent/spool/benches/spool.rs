//! Spool throughput: append + group-commit flush, and read_from paging.
//!
//! `cargo bench -p languard-spool`. Records are 200-byte payloads (224 bytes on disk); the
//! append bench flushes (fdatasync) every 1,000 records, as the agent would per batch.
//! Set `SPOOL_BENCH_DIR` to benchmark on a specific filesystem (default: the temp dir).
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use languard_spool::spool::{Class, Spool, SpoolConfig};

const PAYLOAD: usize = 200;
const BATCH: u64 = 1_000;
const PER_ITER: u64 = 10_000;

fn tempdir() -> tempfile::TempDir {
    match std::env::var_os("SPOOL_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn append_flush(c: &mut Criterion) {
    let dir = tempdir();
    let mut spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    let payload = vec![b'l'; PAYLOAD];
    let mut g = c.benchmark_group("spool");
    g.throughput(Throughput::Elements(PER_ITER));
    g.bench_function("append_200B_flush_every_1000 (10k records)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for i in 0..PER_ITER {
                    black_box(spool.append(Class::Log, &payload).unwrap());
                    if (i + 1) % BATCH == 0 {
                        spool.flush().unwrap();
                    }
                }
                total += start.elapsed();
                // Stay under the bound: the controller acks everything (not timed).
                spool.ack(spool.next_seq() - 1).unwrap();
            }
            total
        });
    });
    g.finish();
}

fn read_from(c: &mut Criterion) {
    let dir = tempdir();
    let mut spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    let payload = vec![b'r'; PAYLOAD];
    const N: u64 = 100_000;
    for i in 0..N {
        let class = if i % 10 == 0 {
            Class::Metrics
        } else {
            Class::Log
        };
        spool.append(class, &payload).unwrap();
    }
    spool.flush().unwrap();
    let mut g = c.benchmark_group("spool");
    g.throughput(Throughput::Elements(N));
    g.bench_function("read_from pages of 1000 (100k records, 2 lanes)", |b| {
        b.iter(|| {
            let mut after = 0;
            let mut n = 0u64;
            loop {
                let page = spool.read_from(after, 1000, 1 << 20).unwrap();
                let Some(last) = page.last() else { break };
                after = last.seq;
                n += page.len() as u64;
            }
            assert_eq!(n, N);
        });
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = append_flush, read_from
}
criterion_main!(benches);

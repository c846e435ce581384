//! Throughput of tailing a file: lines/s from the first write to the last line received.
//!
//! - `live`: a writer thread appends lines as fast as it can (64 KiB buffered writes) while
//!   the tailer follows the file through inotify.
//! - `backlog`: the file is written completely first, then read from its start.
//!
//! Run: `cargo bench -p languard-tail`.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use languard_tail::{LogSource, TailConfig, Tailer};
use tokio_util::sync::CancellationToken;

const LINES: usize = 200_000;

fn line(i: usize) -> String {
    format!(
        "2021/10/05, 08:38:52 Server load: FPS 49, memory used: 1234 MB, out: 567 Kbps, in: 89 Kbps, NG:0, G:{i}, Players: 42\r\n"
    )
}

fn write_all(path: &std::path::Path) {
    let f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, f);
    for i in 0..LINES {
        w.write_all(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
}

/// Time from the start of writing (live) or of the tailer (backlog) to the last line.
async fn run_once(live: bool) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.log");
    std::fs::File::create(&path).unwrap();
    if !live {
        write_all(&path);
    }
    let mut cfg = TailConfig::new(LogSource::File(path.clone()));
    cfg.max_lines_per_sec = 0;
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let (handle, mut rx) = Tailer::spawn(cfg, None, cancel.clone()).unwrap();
    let writer = live.then(|| std::thread::spawn(move || write_all(&path)));
    let mut n = 0usize;
    while n < LINES {
        let batch = rx.recv().await.unwrap();
        n += batch.lines().count();
    }
    let took = start.elapsed();
    assert_eq!(n, LINES);
    if let Some(w) = writer {
        w.join().unwrap();
    }
    cancel.cancel();
    handle.join().await;
    took
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("tail");
    g.throughput(Throughput::Elements(LINES as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(8));
    for (name, live) in [("live", true), ("backlog", false)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| rt.block_on(run_once(live)))
                    .sum::<Duration>()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

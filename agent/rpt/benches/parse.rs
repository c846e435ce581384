//! Throughput of the `.rpt` parser over the real fixture, repeated.
//!
//! Run: `cargo bench -p languard-rpt -- --quick`. Reported throughput is in lines ("elements")
//! per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use languard_rpt::{EntryAssembler, date_from_file_name, parse_line};

const FIXTURE: &str = include_str!("../tests/data/arma3server_x64_2021-10-05_08-38-26.rpt");
const REPEAT: usize = 100;

fn input() -> (String, u64) {
    let body = FIXTURE.repeat(REPEAT);
    let lines = body.lines().count() as u64;
    (body, lines)
}

fn bench(c: &mut Criterion) {
    let (body, lines) = input();
    let start = date_from_file_name("arma3server_x64_2021-10-05_08-38-26.rpt");
    let mut g = c.benchmark_group("rpt");
    g.throughput(Throughput::Elements(lines));

    g.bench_function("parse_line", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in black_box(body.as_str()).lines() {
                let p = parse_line(l);
                n += p.text.len() + p.level as usize;
                black_box(&p.kind);
            }
            n
        });
    });

    g.bench_function("assembler", |b| {
        b.iter(|| {
            let mut asm = EntryAssembler::new(start);
            let mut n = 0usize;
            for l in black_box(body.as_str()).lines() {
                if let Some(e) = asm.push(l) {
                    n += e.text.len();
                    black_box(e);
                }
            }
            n + asm.flush().map_or(0, |e| e.text.len())
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

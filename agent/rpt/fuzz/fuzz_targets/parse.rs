//! Fuzzes `parse_line` and the `EntryAssembler` with arbitrary bytes, decoded lossily like real
//! logs. Run from `agent/rpt`: `cargo +nightly fuzz run parse`.
#![no_main]

use languard_rpt::{EntryAssembler, Limits, Timestamp, date_from_file_name, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first bytes double as a file name for the date helper.
    let _ = date_from_file_name(text.get(..48).unwrap_or(&text));
    let limits = Limits {
        max_entry_lines: 8,
        max_entry_bytes: 512,
    };
    let mut asm = EntryAssembler::new(date_from_file_name(
        "arma3server_x64_2021-10-05_23-59-58.rpt",
    ))
    .with_limits(limits);
    for line in text.split('\n') {
        let p = parse_line(line);
        let body = line.strip_suffix('\r').unwrap_or(line);
        let body = body.strip_prefix('\u{feff}').unwrap_or(body);
        assert!(body.ends_with(p.text));
        if let Timestamp::Short { h, m, s } = p.timestamp {
            assert!(h < 24 && m < 60 && s < 60);
        }
        if let Some(e) = asm.push(line) {
            assert!(e.text.len() <= limits.max_entry_bytes + 40);
            assert!(e.text.split('\n').count() <= limits.max_entry_lines as usize + 1);
        }
    }
    if let Some(e) = asm.flush() {
        assert!(e.text.len() <= limits.max_entry_bytes + 40);
    }
});

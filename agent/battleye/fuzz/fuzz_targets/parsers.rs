//! Any text (decoded lossily, as the client does): the answer and message parsers never panic.
#![no_main]

use languard_battleye::{messages, parse_admins, parse_bans, parse_missions, parse_players};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let players = parse_players(&text);
    for p in &players.players {
        assert!(!p.name.is_empty());
    }
    let _ = parse_bans(&text);
    let _ = parse_admins(&text);
    let _ = parse_missions(&text);
    let _ = messages::parse(&text);
});

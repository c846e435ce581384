//! Deterministic pseudo-random robustness test (the stable companion of `fuzz/`): ~100k byte
//! strings and mutated valid packets go through the decoders and parsers. Nothing may panic, and
//! every datagram that decodes must re-encode to something that decodes to the same value.
#![allow(clippy::unwrap_used)]

use languard_battleye::packet::frame;
use languard_battleye::{
    ClientPacket, ServerPacket, messages, parse_admins, parse_bans, parse_missions, parse_players,
};

/// xorshift64*: tiny, deterministic, good enough for test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn check_datagram(data: &[u8]) -> (bool, bool) {
    let server = ServerPacket::decode(data);
    if let Ok(p) = &server {
        assert_eq!(&ServerPacket::decode(&p.encode()).unwrap(), p, "{data:?}");
    }
    let client = ClientPacket::decode(data);
    if let Ok(p) = &client {
        assert_eq!(&ClientPacket::decode(&p.encode()).unwrap(), p, "{data:?}");
    }
    (server.is_ok(), client.is_ok())
}

fn valid_datagrams() -> Vec<Vec<u8>> {
    vec![
        ClientPacket::Login {
            password: "pw".into(),
        }
        .encode(),
        ClientPacket::Command {
            seq: 9,
            command: "players".into(),
        }
        .encode(),
        ClientPacket::MessageAck { seq: 200 }.encode(),
        ServerPacket::LoginResult { ok: true }.encode(),
        ServerPacket::CommandResponse {
            seq: 1,
            text: "Players on server:".into(),
        }
        .encode(),
        ServerPacket::CommandPart {
            seq: 1,
            total: 4,
            index: 3,
            payload: b"xyz".to_vec(),
        }
        .encode(),
        ServerPacket::Message {
            seq: 3,
            text: "Player #1 Ab (1.2.3.4:5) connected".into(),
        }
        .encode(),
    ]
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut decoded = 0;
    for i in 0..40_000 {
        let mut data = rng.bytes(64);
        // Half of the inputs get a valid header so the payload decoding is exercised too.
        // Their type byte is mostly a known one (0..=3).
        if i % 2 == 0 {
            if let Some(first) = data.first_mut() {
                *first %= 4;
            }
            data = frame(&data);
        }
        let (s, c) = check_datagram(&data);
        decoded += usize::from(s) + usize::from(c);
    }
    assert!(
        decoded > 8_000,
        "framed inputs reach the payload decoder ({decoded})"
    );
}

#[test]
fn mutated_valid_packets_never_panic() {
    let mut rng = Rng(42);
    let seeds = valid_datagrams();
    for seed in &seeds {
        let (s, c) = check_datagram(seed);
        assert!(s || c, "seed decodes");
    }
    for i in 0..40_000 {
        let mut data = seeds[rng.below(seeds.len())].clone();
        match rng.below(5) {
            0 => {
                let at = rng.below(data.len());
                data[at] ^= 1 << rng.below(8);
            }
            1 => data.truncate(rng.below(data.len())),
            2 => data.extend(rng.bytes(8)),
            3 => {
                let at = rng.below(data.len());
                data.insert(at, rng.next() as u8);
            }
            _ => {
                let at = rng.below(data.len());
                data.remove(at);
            }
        }
        // Re-frame some mutants so they pass the CRC and reach the payload decoder.
        if i % 3 == 0 && data.len() > 7 {
            let payload = data[7..].to_vec();
            data = frame(&payload);
        }
        check_datagram(&data);
    }
}

const RESPONSES: &str = include_str!("data/rcon_responses.txt");
const MESSAGES: &str = include_str!("data/server_messages.txt");

#[test]
fn mutated_answers_and_messages_never_panic() {
    let mut rng = Rng(7);
    let answer_lines: Vec<&str> = RESPONSES.lines().collect();
    let message_lines: Vec<&str> = MESSAGES.lines().collect();
    let mut rows = 0;
    for _ in 0..20_000 {
        // A few real lines, some mutated at byte level (lossy decoded like the client does).
        let mut text = Vec::new();
        for _ in 0..rng.below(6) {
            let mut line = answer_lines[rng.below(answer_lines.len())]
                .as_bytes()
                .to_vec();
            if !line.is_empty() && rng.below(2) == 0 {
                let at = rng.below(line.len());
                line[at] = rng.next() as u8;
            }
            if rng.below(4) == 0 {
                line.truncate(rng.below(line.len() + 1));
            }
            text.extend(line);
            text.push(b'\n');
        }
        let text = String::from_utf8_lossy(&text);
        let list = parse_players(&text);
        rows += list.players.len();
        for p in &list.players {
            assert!(!p.name.is_empty());
            assert!(p.guid.as_ref().is_none_or(|g| g.len() == 32));
        }
        parse_bans(&text);
        parse_admins(&text);
        parse_missions(&text);

        let mut msg = message_lines[rng.below(message_lines.len())]
            .as_bytes()
            .to_vec();
        if !msg.is_empty() {
            let at = rng.below(msg.len());
            match rng.below(3) {
                0 => msg[at] = rng.next() as u8,
                1 => msg.truncate(at),
                _ => msg.insert(at, b"()#:- "[rng.below(6)]),
            }
        }
        let _ = messages::parse(&String::from_utf8_lossy(&msg));
    }
    assert!(
        rows > 1_000,
        "mutated inputs still contain valid rows ({rows})"
    );
}

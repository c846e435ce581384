//! Tests over the real Arma 3 2.06 log in `tests/data/`.
#![allow(clippy::unwrap_used)]

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use languard_rpt::{
    Entry, EntryAssembler, Kind, Level, LogTimeZone, Timestamp, date_from_file_name, parse_line,
    parse_log,
};

const NAME: &str = "arma3server_x64_2021-10-05_08-38-26.rpt";
const LOG: &str = include_str!("data/arma3server_x64_2021-10-05_08-38-26.rpt");

/// 1-based line of the fixture.
fn line(n: usize) -> &'static str {
    LOG.lines().nth(n - 1).unwrap()
}

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn entries() -> Vec<Entry> {
    parse_log(LOG, date_from_file_name(NAME))
}

fn header(key: &str, value: &str) -> Kind<'static> {
    Kind::Header {
        key: key.to_owned().into(),
        value: value.to_owned().into(),
    }
}

#[test]
fn fixture_shape() {
    assert_eq!(LOG.lines().count(), 422);
    assert!(!LOG.contains('\r'));
}

#[test]
fn header_lines_have_no_timestamp() {
    for n in 1..=16 {
        let p = parse_line(line(n));
        assert_eq!(p.timestamp, Timestamp::None, "line {n}");
        assert_eq!(p.text, line(n), "line {n}");
    }
    // the header's own dates are not line timestamps
    assert_eq!(
        parse_line(line(6)).text,
        "Exe timestamp: 2021/09/30 12:39:26"
    );
}

#[test]
fn every_header_line_becomes_a_header_entry() {
    let e = entries();
    let start = dt("2021-10-05 08:38:26");
    let headers: Vec<&Entry> = e.iter().take_while(|e| e.is_header()).collect();
    let expected = [
        header(
            "exe",
            r"C:\TCAFiles\Users\Antistasi\2433\arma3server_x64.exe",
        ),
        header(
            "command_line",
            line(3).strip_prefix("== ").unwrap().trim_end(),
        ),
        header("Original output filename", "Arma3Retail_Server_x64"),
        header("Exe timestamp", "2021/09/30 12:39:26"),
        header("Current time", "2021/10/05 08:38:26"),
        header("Type", "Public"),
        header("Build", "Stable"),
        header("Version", "2.06.148221"),
        header(
            "Allocator",
            r"C:\TCAFiles\Users\Antistasi\2433\Dll\tbb4malloc_bi_x64.dll [2017.0.0.0] [2017.0.0.0]",
        ),
        header("PhysMem", line(14).strip_prefix("PhysMem: ").unwrap()),
    ];
    assert_eq!(headers.len(), expected.len());
    let source_lines = [2, 3, 5, 6, 7, 9, 10, 11, 13, 14];
    for ((h, want), n) in headers.iter().zip(&expected).zip(source_lines) {
        assert_eq!(&h.kind, want);
        assert_eq!(h.text, line(n));
        assert_eq!(h.time, start);
        assert!(h.date_known);
        assert_eq!(h.level, Level::Info);
        assert_eq!(h.line_count, 1);
    }
    // the command line value keeps its arguments
    match &headers[1].kind {
        Kind::Header { value, .. } => {
            assert!(value.contains("-config=ARMAHOSTS\\server\\server.cfg"));
        }
        other => panic!("{other:?}"),
    }
    // nothing after the header is a header entry
    assert!(e.iter().skip(headers.len()).all(|e| !e.is_header()));
}

#[test]
fn header_date_used_without_file_name() {
    let e = parse_log(LOG, None);
    // the exe/command-line lines come before "Current time:" and cannot know the date
    assert!(!e[0].date_known && !e[1].date_known);
    assert!(e[4].date_known);
    let first = e.iter().find(|e| !e.is_header()).unwrap();
    assert!(first.date_known);
    assert_eq!(first.time, dt("2021-10-05 08:38:26"));
    // the same result as with the file-name date for every non-header entry
    let with_name = entries();
    assert_eq!(e.len(), with_name.len());
    for (a, b) in e.iter().zip(&with_name).skip(10) {
        assert_eq!(a, b);
    }
}

#[test]
fn short_form_lines() {
    let p = parse_line(line(17));
    assert_eq!(p.timestamp, Timestamp::Short { h: 8, m: 38, s: 26 });
    assert_eq!(
        p.text,
        "SteamAPI initialization failed. Steam features won't be accessible!"
    );
    assert_eq!(p.level, Level::Info);
    assert_eq!(p.kind, Kind::Other);
    let p = parse_line(line(102));
    assert_eq!(p.timestamp, Timestamp::Short { h: 8, m: 38, s: 51 });
    assert_eq!(p.text, "MovesType CfgMovesMaleSdr load time 3577.0 ms");
    // every line from 17 to 102 that starts with a space has a short timestamp
    for n in 17..=102 {
        let l = line(n);
        if l.starts_with(' ') {
            assert!(
                matches!(
                    parse_line(l).timestamp,
                    Timestamp::Short { h: 8, m: 38, .. }
                ),
                "{n}"
            );
        }
    }
}

#[test]
fn full_form_lines() {
    let p = parse_line(line(103));
    assert_eq!(
        p.timestamp,
        Timestamp::Full {
            date: NaiveDate::from_ymd_opt(2021, 10, 5).unwrap(),
            time: NaiveTime::from_hms_opt(8, 38, 52).unwrap()
        }
    );
    assert_eq!(
        p.text,
        "Initializing Steam server - Game Port: 2312, Steam Query Port: 2313"
    );
    // a message that itself starts with a date is not confused with the timestamp
    let p = parse_line(line(403));
    assert!(matches!(p.timestamp, Timestamp::Full { .. }));
    assert!(
        p.text
            .starts_with("2021-10-05 15:42:27:203 | Antistasi | Info |")
    );
    assert_eq!(p.level, Level::Info);
    // the switch from short to full happens exactly once, at line 103
    let forms: Vec<u8> = LOG
        .lines()
        .map(|l| match parse_line(l).timestamp {
            Timestamp::None => 0,
            Timestamp::Short { .. } => 1,
            Timestamp::Full { .. } => 2,
        })
        .collect();
    assert!(forms[..102].iter().all(|&f| f != 2));
    assert!(forms[102..].iter().all(|&f| f != 1));
    assert_eq!(forms.iter().filter(|&&f| f == 1).count(), 85);
}

#[test]
fn levels_on_real_lines() {
    assert_eq!(parse_line(line(94)).level, Level::Warning); // Warning Message:
    assert_eq!(parse_line(line(100)).level, Level::Warning); // Warning: looped
    assert_eq!(parse_line(line(110)).level, Level::Error); // Server error:
    assert_eq!(parse_line(line(290)).level, Level::Error); // Error in expression
    assert_eq!(parse_line(line(293)).level, Level::Error); //   Error position:
    assert_eq!(parse_line(line(294)).level, Level::Error); //   Error Undefined variable
    let cba_warn = LOG
        .lines()
        .find(|l| l.contains("[CBA] (xeh) WARNING:"))
        .unwrap();
    assert_eq!(parse_line(cba_warn).level, Level::Warning);
    let antistasi_err = LOG.lines().find(|l| l.contains("| Error |")).unwrap();
    assert_eq!(parse_line(antistasi_err).level, Level::Error);
    let bis_err = LOG
        .lines()
        .find(|l| l.contains("] Error: SmartMarker"))
        .unwrap();
    assert_eq!(parse_line(bis_err).level, Level::Error);
    let counts = LOG.lines().fold([0; 3], |mut c, l| {
        c[parse_line(l).level as usize] += 1;
        c
    });
    // Info, Warning, Error over all 422 lines
    assert_eq!(counts.iter().sum::<usize>(), 422);
    assert_eq!(counts[1], 18);
    assert_eq!(counts[2], 70);
}

#[test]
fn non_ascii_line() {
    let p = parse_line(line(185));
    assert!(matches!(p.timestamp, Timestamp::Full { .. }));
    assert_eq!(
        p.text,
        " \u{27a5} Context: mpmissions\\__cur_mp.takistan\\stringtable.xml"
    );
    let p = parse_line(line(22));
    assert_eq!(p.timestamp, Timestamp::Short { h: 8, m: 38, s: 28 });
    assert!(p.text.starts_with(" ➥ Context: "));
    let e = entries();
    let ctx = e.iter().filter(|e| e.text.contains('➥')).count();
    assert_eq!(ctx, 7);
}

#[test]
fn continuation_blocks() {
    let e = entries();
    // Warning Message + one continuation line
    let w = e
        .iter()
        .find(|e| e.text.starts_with("Warning Message:"))
        .unwrap();
    assert_eq!(w.line_count, 2);
    assert!(w.text.ends_with("has been deleted.\na3_characters_f"));
    assert_eq!(w.level, Level::Warning);
    assert_eq!(w.time, dt("2021-10-05 08:38:48"));

    // quoted string spanning five lines with tab indentation
    let tfe = e
        .iter()
        .find(|e| e.text.contains("[TFE] Info: Settings:"))
        .unwrap();
    assert_eq!(tfe.line_count, 5);
    assert_eq!(tfe.text.lines().count(), 5);
    assert!(
        tfe.text
            .ends_with("\t\t\t\t\t\t\t\tYour TFAR TS3 plugin state: %3\"\"]\"")
    );

    // Error in expression: two untimestamped SQF lines, then the engine's error tail
    let err = e
        .iter()
        .find(|e| e.text.starts_with("Error in expression"))
        .unwrap();
    assert_eq!(err.level, Level::Error);
    assert_eq!(err.time, dt("2021-10-05 08:40:59"));
    assert_eq!(err.line_count, 6);
    let want = [
        "Error in expression <};",
        "_leader = _possibleLeaders select 0;",
        "_leader setvariable [\"BIS_HC_scope\",_log>",
        "  Error position: <_leader setvariable [\"BIS_HC_scope\",_log>",
        "  Error Undefined variable in expression: _leader",
        "File A3\\modules_f\\HC\\data\\scripts\\hc.sqf..., line 71",
    ];
    assert_eq!(err.text, want.join("\n"));
    // the next entry is the networkserver line, not merged
    let i = e.iter().position(|x| x == err).unwrap();
    assert!(e[i + 1].text.starts_with("c:\\bis\\source\\stable"));
}

#[test]
fn entry_count_and_line_accounting() {
    let e = entries();
    // 16 header lines -> 10 header entries; 7 untimestamped continuation lines and 3 merged
    // error-tail lines fold into their entries: 422 - 16 - 7 - 3 = 396 others.
    assert_eq!(e.iter().filter(|e| e.is_header()).count(), 10);
    assert_eq!(e.len(), 406);
    let body_lines: u32 = e
        .iter()
        .filter(|e| !e.is_header())
        .map(|e| e.line_count)
        .sum();
    assert_eq!(body_lines, 422 - 16);
    assert!(e.iter().all(|e| !e.truncated && e.date_known));
    // times never go backwards in this file
    assert!(e.windows(2).all(|w| w[0].time <= w[1].time));
    assert_eq!(e.last().unwrap().time, dt("2021-10-05 08:42:34"));
}

#[test]
fn mission_lines() {
    let e = entries();
    let start = e.iter().find(|e| e.kind == Kind::MissionStarted).unwrap();
    assert_eq!(start.text, "Starting mission:");
    assert_eq!(start.time, dt("2021-10-05 08:40:56"));
    assert_eq!(
        e.iter().filter(|e| e.kind == Kind::MissionStarted).count(),
        1
    );
    // the detail lines after it are plain entries
    assert_eq!(parse_line(line(188)).kind, Kind::Other);
    assert_eq!(
        parse_line(line(188)).text,
        " Mission file: Antistasi-Takistan-2-5-3 (__cur_mp)"
    );
    // engine lines in the same shape (not in this excerpt)
    assert_eq!(
        parse_line(
            "2021/10/05, 08:40:55 Mission Antistasi-Takistan-2-5-3.takistan read from bank."
        )
        .kind,
        Kind::MissionRead {
            mission: "Antistasi-Takistan-2-5-3.takistan".into()
        }
    );
    assert_eq!(
        parse_line(" 8:40:56 Game started.").kind,
        Kind::MissionStarted
    );
    assert_eq!(
        parse_line("2021/10/05, 10:00:00 Game finished.").kind,
        Kind::MissionFinished
    );
}

#[test]
fn player_lines() {
    // mod lines that mention players are not engine player events
    for n in [110, 347, 349, 372, 375, 411, 414] {
        let p = parse_line(line(n));
        assert_eq!(p.kind, Kind::Other, "line {n}: {}", line(n));
    }
    assert!(line(347).contains("Player connected:"));
    assert!(line(372).contains("Player disconnected:"));
    // engine lines (the format Arma 3 writes; this excerpt has none)
    let p = parse_line("2021/10/05, 08:41:47 Player Callum connected (id=76561198127543661).\r");
    assert_eq!(
        p.kind,
        Kind::PlayerConnected {
            name: "Callum".into(),
            id: Some("76561198127543661".into())
        }
    );
    assert_eq!(p.kind.steam_id(), Some(76_561_198_127_543_661));
    assert_eq!(p.level, Level::Info);
    let p = parse_line("2021/10/05, 08:42:08 Player Callum disconnected.");
    assert_eq!(
        p.kind,
        Kind::PlayerDisconnected {
            name: "Callum".into()
        }
    );
    let p = parse_line(" 8:42:08 Player R Alpha 1-2:1 (Callum) connected (id=76561198127543661).");
    assert!(
        matches!(p.kind, Kind::PlayerConnected { ref name, .. } if name == "R Alpha 1-2:1 (Callum)")
    );
    let p = parse_line(" 8:42:08 Player Jörg ➥ disconnected.");
    assert_eq!(
        p.kind,
        Kind::PlayerDisconnected {
            name: "Jörg ➥".into()
        }
    );
}

#[test]
fn server_load_battleye_host_identity() {
    let p = parse_line(
        "2021/10/05, 09:00:00 Server load: FPS 47, memory used: 2311 MB, out: 843 Kbps, in: 120 Kbps, NG:0, G:1632, BE-NG:0, BE-G:0, Players: 7 (L:0, R:0, B:0, G:7, D:0)",
    );
    match p.kind {
        Kind::ServerLoad(l) => {
            assert_eq!(l.fps, 47.0);
            assert_eq!(l.memory_mb, 2311);
            assert_eq!(l.out_kbps, Some(843));
            assert_eq!(l.in_kbps, Some(120));
            assert_eq!(l.players, Some(7));
        }
        other => panic!("{other:?}"),
    }
    let p = parse_line(" 8:38:53 BattlEye Server: Initialized (v1.217)");
    assert_eq!(
        p.kind,
        Kind::BattlEye {
            message: "Initialized (v1.217)".into()
        }
    );
    assert_eq!(
        parse_line(" 8:38:53 Host identity created.").kind,
        Kind::HostIdentity
    );
    // the Antistasi performance line is not a Server load line
    assert!(line(386).contains("ServerFPS:"));
    assert_eq!(parse_line(line(386)).kind, Kind::Other);
}

#[test]
fn crlf_gives_the_same_entries() {
    let crlf = LOG.replace('\n', "\r\n");
    let a = parse_log(&crlf, date_from_file_name(NAME));
    let b = entries();
    assert_eq!(a, b);
    // parse_line also strips a full "\r\n"
    assert_eq!(parse_line("2021/10/05, 08:38:52 x\r\n").text, "x");
    assert_eq!(parse_line("\r").text, "");
}

#[test]
fn lines_before_any_timestamp_and_odd_lines() {
    // no header at all, garbage first
    let mut asm = EntryAssembler::new(Some(dt("2021-10-05 08:00:00")));
    assert!(asm.push("garbage \u{fffd}\u{fffd} line").is_none());
    assert!(asm.in_header());
    let g = asm.push("").or_else(|| asm.push(" 8:00:01 x")).unwrap();
    assert!(g.is_header());
    assert_eq!(
        g.kind,
        Kind::Header {
            key: "".into(),
            value: "garbage \u{fffd}\u{fffd} line".into()
        }
    );
    assert!(!asm.in_header());
    let x = asm.flush().unwrap();
    assert_eq!(x.text, "x");

    // a line that is only a timestamp, in both forms
    let p = parse_line(" 8:00:02");
    assert_eq!(p.timestamp, Timestamp::Short { h: 8, m: 0, s: 2 });
    assert_eq!(p.text, "");
    let p = parse_line("2021/10/05, 08:00:03");
    assert!(matches!(p.timestamp, Timestamp::Full { .. }));
    assert_eq!(p.text, "");
    let p = parse_line("2021/10/05, 08:00:03 ");
    assert_eq!(p.text, "");
    let e = parse_log(" 8:00:02\n 8:00:03\ncont", date_from_file_name(NAME));
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].text, "");
    assert_eq!(e[1].text, "\ncont");

    // empty lines
    let p = parse_line("");
    assert_eq!(
        (p.timestamp, p.text, p.level, p.kind),
        (Timestamp::None, "", Level::Info, Kind::Other)
    );
    assert!(parse_log("", None).is_empty());
    assert!(parse_log("\n\n\n", None).is_empty());

    // garbage
    for g in [
        "\0\0\0",
        "::::::::",
        "99:99:99 x",
        "2021/99/99, 99:99:99 y",
        "\u{feff}",
        "==",
    ] {
        let p = parse_line(g);
        assert_eq!(p.timestamp, Timestamp::None, "{g:?}");
        assert_eq!(p.kind, Kind::Other);
    }
    // a BOM before the first timestamp is ignored
    assert_eq!(parse_line("\u{feff} 8:00:00 a").text, "a");
}

#[test]
fn midnight_rollover_on_real_lines() {
    // the real short-form lines, shifted to just before midnight
    let start = date_from_file_name("arma3server_x64_2021-12-31_23-59-58.rpt");
    let lines = [
        "23:59:58 Initializing stats manager.",
        "23:59:59 Stats config disabled.",
        " 0:00:00 Unsupported language English in stringtable",
        " 0:00:01  ➥ Context: ca\\language\\stringtable.xml",
        "2022/01/01, 00:00:02 Connected to Steam servers",
    ];
    let e = parse_log(&lines.join("\n"), start);
    let times: Vec<String> = e.iter().map(|e| e.time.to_string()).collect();
    assert_eq!(
        times,
        [
            "2021-12-31 23:59:58",
            "2021-12-31 23:59:59",
            "2022-01-01 00:00:00",
            "2022-01-01 00:00:01",
            "2022-01-01 00:00:02"
        ]
    );
}

#[test]
fn utc_conversion_of_entries() {
    let e = entries();
    let last = e.last().unwrap();
    let berlin: LogTimeZone = "Europe/Berlin".parse().unwrap();
    assert_eq!(
        last.time_utc(&berlin).naive_utc(),
        dt("2021-10-05 06:42:34")
    );
    assert_eq!(last.time_utc(&LogTimeZone::Utc).naive_utc(), last.time);
}

//! Parser for Arma 3 dedicated-server `.rpt` logs.
//!
//! An `.rpt` file (`arma3server_x64_YYYY-MM-DD_HH-MM-SS.rpt`, one per server start) starts with a
//! header block without timestamps (`=====` lines, exe path, command line, version, memory),
//! followed by lines stamped either `" 9:12:14 text"` (short form, hour space-padded) or, once
//! `server.cfg` is loaded with `timeStampFormat = "full"`, `"2021/10/05, 08:38:52 text"`. Lines
//! without a timestamp after the header continue the entry before them (multi-line
//! `Error in expression <...>` blocks). There is no level field; severity is inferred.
//!
//! The crate has three layers, all pure (no I/O):
//! - [`parse_line`]: a fast, allocation-free classifier of one line into a [`ParsedLine`]
//!   ([`Timestamp`], message text borrowed from the line, [`Level`], structured [`Kind`]).
//! - [`EntryAssembler`]: turns a stream of lines into [`Entry`] values with a full local
//!   [`chrono::NaiveDateTime`] (date from [`date_from_file_name`], the header, or full-form lines,
//!   with midnight roll-over), header entries, continuation lines, and size [`Limits`].
//! - [`LogTimeZone`] / [`local_to_utc`]: local wall-clock time to UTC, DST-safe.
//!
//! Input is `&str`: decode file bytes lossily (`String::from_utf8_lossy`) — mods write anything.
//!
//! ```
//! use languard_rpt::{date_from_file_name, parse_log, Kind, Level};
//! let log = "== C:\\a3\\arma3server_x64.exe\n\
//!            \n\
//!            \x208:38:26 Host identity created.\n\
//!            2021/10/05, 08:40:59 Error in expression <_leader = _x;\n\
//!            _leader setvariable [\"a\",1]>\n\
//!            2021/10/05, 08:41:47 Player Callum connected (id=76561198127543661).\r\n";
//! let entries = parse_log(log, date_from_file_name("arma3server_x64_2021-10-05_08-38-26.rpt"));
//! assert_eq!(entries.len(), 4);
//! assert!(entries[0].is_header());
//! assert_eq!(entries[1].kind, Kind::HostIdentity);
//! assert_eq!(entries[2].level, Level::Error);
//! assert_eq!(entries[2].line_count, 2);
//! assert_eq!(entries[3].kind.steam_id(), Some(76561198127543661));
//! ```

mod assemble;
mod line;
mod tz;

pub use assemble::{Entry, EntryAssembler, Limits, date_from_file_name, parse_log};
pub use line::{Kind, Level, ParsedLine, ServerLoad, Timestamp, classify, infer_level, parse_line};
pub use tz::{LogTimeZone, RptError, local_to_utc};

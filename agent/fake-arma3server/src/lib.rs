//! `fake-arma3server`: a test double of the Arma 3 dedicated server (`arma3server_x64`) for machines
//! without Arma 3. It takes the real server's parameters, writes a realistic `.rpt` log, binds the
//! game port (UDP, loopback only), reads the BattlEye config like BattlEye does and answers BattlEye
//! RCon; fake-only `-fake*` parameters and a control file script crashes, hangs, floods and players.
//!
//! Embedding (busybox-style multi-call, e.g. a binary that acts as the fake when invoked as
//! `arma3server_x64`): call [`run`] with the arguments after the program name and exit with its
//! result.
//!
//! ```no_run
//! let code = fake_arma3server::run(std::env::args_os().skip(1).collect());
//! std::process::exit(code);
//! ```
//!
//! # Parameters
//!
//! ```text
#![doc = include_str!("help.txt")]
//! ```
//!
//! # Log output
//!
//! Header block without timestamps, then startup lines with short timestamps (`" 9:12:14 text"`),
//! then, once server.cfg is "loaded", its `timeStampFormat` (default full: `"2021/10/05, 08:38:52
//! text"`). Startup, mission and runtime lines are replayed from a real 2.06 server log with fresh
//! timestamps, including a multi-line `Error in expression <...>` block whose continuation lines
//! have no timestamp. The mission is up when `Game started.` is written. Then: `Server load: FPS
//! ...` every `-fakeLoadInterval`, scripted players
//! (`Player <name> connecting.`, `BattlEye Server: Player #N <name> (127.0.0.1:port) connected`,
//! `Player <name> connected (id=<steamid>).`, `BattlEye Server: Player #N <name> - BE GUID: <guid>`,
//! `BattlEye Server: Verified GUID (<guid>) of player #N <name>`, and on leaving
//! `BattlEye Server: Player #N <name> disconnected` + `Player <name> disconnected.`), chat as
//! `BattlEye Server: (Global) <name>: <text>`. Every entry is flushed at once.
//!
//! On a clean exit the players still on the server disconnect, then the last line starts with
//! [`FINAL_LINE`] and gives the reason in parentheses, e.g. `Server shut down (SIGTERM).`, and the
//! exit code is 0. A crash writes nothing more.
//!
//! # BattlEye
//!
//! The config is `BEServer_x64.cfg` / `beserver_x64.cfg` (any case) in `-bepath=<dir>`, else
//! `<profiles>/BattlEye/`. At start it is copied to `beserver_x64_active_<8 hex>.cfg` in the same
//! folder and only the copy is read; a stale `*_active_*` copy from an earlier run wins over the base
//! file (so config edits are ignored until stale copies are deleted, as with the real BattlEye). The
//! copy is deleted on a clean exit and left after a crash. `RConPassword` enables RCon on `RConIP`
//! (loopback only, default 127.0.0.1; anything else: exit 1) and `RConPort` (default game port + 4).
//! Commands: `players`, `say`, `kick`, `ban`, `addBan`, `bans`, `removeBan`, `admins`, `missions`,
//! `#lock`, `#unlock`, `#shutdown` (see [`rcon`]).

pub mod args;
pub mod becfg;
pub mod control;
pub mod rcon;
pub mod rcon_net;
pub mod replay;
pub mod rpt;
pub mod server;
pub mod servercfg;

use std::ffi::OsString;

pub use server::FINAL_LINE;

/// The `-fakeHelp` text (also the parameter section of these docs).
pub const HELP: &str = include_str!("help.txt");

/// Runs the fake server with `args` (without the program name) and returns its exit code.
/// Synchronous: builds its own (single-threaded) tokio runtime, so call it before starting any
/// runtime of your own (e.g. first thing in a multi-call `main`), not from async code.
/// Bad parameters: message on stderr, code 1.
pub fn run(args: Vec<OsString>) -> i32 {
    let parsed = match args::parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("arma3server: {e}");
            return 1;
        }
    };
    if parsed.help {
        print!("{HELP}");
        return 0;
    }
    // One thread: a hung server (control `hang`) must freeze as a whole.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("arma3server: cannot start the runtime: {e}");
            return 1;
        }
    };
    let code = rt.block_on(server::serve(parsed));
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

//! The fake server's life: validation, log header, startup output, game port, BattlEye, scripted
//! players, timers, the control file, signals and the way it ends.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Local;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

use crate::args::{Args, CrashSignal, LogTo};
use crate::becfg::{self, BeConfig};
use crate::control::{self, Command};
use crate::rcon::{Action, GameState, RconHandler};
use crate::rcon_net;
use crate::replay;
use crate::rpt::{self, Log, Stamp};
use crate::servercfg::{self, ServerCfg};

/// First words of the last line written on a clean exit (SIGTERM/SIGINT, RCon `#shutdown`,
/// `-fakeExitAfter`, control `shutdown`/`exit`); the reason follows in parentheses.
pub const FINAL_LINE: &str = "Server shut down";

/// Process-level requests to the main loop.
#[derive(Debug)]
enum Ctl {
    /// Polite stop request (signal, RCon, control file): ignored under `-fakeHang`.
    Shutdown(String),
    /// Stop by itself (`-fakeExitAfter`, control `exit`): always honoured unless frozen.
    Exit(String),
    Crash(i32),
    Raise(CrashSignal),
    Hang,
}

#[derive(Clone)]
struct Ctx {
    log: Log,
    rcon: RconHandler,
    ctl: mpsc::UnboundedSender<Ctl>,
    join_ping_delay: Duration,
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("arma3server: {msg}");
    1
}

/// Runs the server until it ends; returns the process exit code.
pub async fn serve(args: Args) -> i32 {
    let start = Local::now();
    let started = Instant::now();

    // ---- validation before anything is bound or written ----
    if !args.ip().is_loopback() {
        return fail(format!(
            "-ip={} is not a loopback address; this fake server only ever binds 127.0.0.1 (refusing to start)",
            args.ip()
        ));
    }
    if args.log_to() == LogTo::Profiles && args.profiles.is_none() {
        return fail("-fakeLogTo=profiles needs -profiles=<dir>");
    }
    if (args.crash_signal.is_some() || args.exit_code.is_some()) && args.crash_after.is_none() {
        return fail("-fakeCrashSignal and -fakeExitCode need -fakeCrashAfter=<secs>");
    }
    let cfg = match &args.config {
        Some(p) => match std::fs::read(p) {
            Ok(b) => Some(servercfg::parse(&String::from_utf8_lossy(&b))),
            Err(e) => {
                eprintln!(
                    "arma3server: cannot read -config={}: {e}; using defaults",
                    p.display()
                );
                None
            }
        },
        None => None,
    };
    let cfg_missing = args.config.is_some() && cfg.is_none();
    let cfg = cfg.unwrap_or_default();
    let be: Option<BeConfig> = if cfg.battleye {
        // Default RCon port when RConPort is missing: game port + 4 (the fake's choice).
        match becfg::load(&args.be_dir(), args.port().saturating_add(4)) {
            Ok(b) => b,
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    let be_active = be.as_ref().map(|b| b.active_path.clone());
    let cleanup_active = move || {
        if let Some(p) = &be_active {
            let _ = std::fs::remove_file(p);
        }
    };

    // ---- the log ----
    let eol = args.line_ending().as_str();
    let log = match args.log_to() {
        LogTo::Stdout => Log::stdout(eol),
        LogTo::Profiles => match Log::profiles(&args.profiles_dir(), &start, eol) {
            Ok(l) => l,
            Err(e) => {
                cleanup_active();
                return fail(format!(
                    "cannot create the log in {}: {e}",
                    args.profiles_dir().display()
                ));
            }
        },
    };
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "arma3server_x64".to_string());
    log.raw(&rpt::header(
        &exe,
        &rpt::command_line(&exe, &args.raw),
        &start,
    ));

    // ---- ports: loopback only ----
    let game_addr = SocketAddr::new(args.ip().into(), args.port());
    let game_socket = match UdpSocket::bind(game_addr) {
        Ok(s) => s,
        Err(e) => {
            log.line(&format!(
                "Server error: cannot bind game port {game_addr}: {e}"
            ));
            cleanup_active();
            return fail(format!("cannot bind game port {game_addr}: {e}"));
        }
    };
    let (msg_tx, msg_rx) = mpsc::unbounded_channel::<String>();
    let (act_tx, mut act_rx) = mpsc::unbounded_channel::<Action>();
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Ctl>();
    let missions = vec![format!("{}.pbo", cfg.template)];
    let rcon = RconHandler::new(GameState::new(missions), act_tx);
    let mut rcon_net_task = None;
    if let Some(settings) = be.as_ref().and_then(|b| b.rcon.clone()) {
        match rcon_net::bind(&settings, rcon.clone()).await {
            Ok(server) => {
                rcon_net_task = Some(tokio::spawn(server.run(msg_rx)));
            }
            Err(e) => {
                log.line(&format!(
                    "BattlEye Server: cannot bind RCon port {}:{}: {e}",
                    settings.ip, settings.port
                ));
                cleanup_active();
                return fail(format!(
                    "cannot bind BattlEye RCon port {}:{}: {e}",
                    settings.ip, settings.port
                ));
            }
        }
    }

    let ctx = Ctx {
        log: log.clone(),
        rcon: rcon.clone(),
        ctl: ctl_tx.clone(),
        join_ping_delay: Duration::from_millis(150),
    };

    // ---- signals ----
    spawn_signals(ctl_tx.clone());

    // ---- timers, from process start ----
    if let Some(d) = args.crash_after {
        let tx = ctl_tx.clone();
        let req = match args.crash_signal {
            Some(s) => Ctl::Raise(s),
            None => Ctl::Crash(args.crash_exit_code()),
        };
        tokio::spawn(async move {
            sleep_until(started + d).await;
            let _ = tx.send(req);
        });
    }
    if let Some(d) = args.exit_after {
        let tx = ctl_tx.clone();
        tokio::spawn(async move {
            sleep_until(started + d).await;
            let _ = tx.send(Ctl::Exit("-fakeExitAfter".into()));
        });
    }
    if let Some(d) = args.hang_after {
        let tx = ctl_tx.clone();
        tokio::spawn(async move {
            sleep_until(started + d).await;
            let _ = tx.send(Ctl::Hang);
        });
    }

    // ---- control file ----
    spawn_control(ctx.clone(), args.control_path(), args.crash_exit_code());

    // ---- startup output, then the running server ----
    {
        let ctx = ctx.clone();
        let args = args.clone();
        let cfg = cfg.clone();
        let be_on = be.is_some();
        tokio::spawn(async move {
            startup(&ctx, &args, &cfg, cfg_missing, be_on).await;
            running(ctx, args).await;
        });
    }

    // ---- main loop: side effects in order, and the way it ends ----
    let mut frozen = false;
    loop {
        tokio::select! {
            // Effects first: a control `log x` followed by `hang` writes x before freezing.
            biased;
            Some(a) = act_rx.recv() => {
                if frozen { continue; }
                match a {
                    Action::Log(l) => log.line(&l),
                    Action::Message(m) => { let _ = msg_tx.send(m); }
                    Action::Shutdown => { let _ = ctl_tx.send(Ctl::Shutdown("RCon #shutdown".into())); }
                }
            }
            Some(c) = ctl_rx.recv() => {
                if frozen {
                    // A hung server reacts to nothing; only SIGKILL ends it.
                    continue;
                }
                let reason = match c {
                    Ctl::Shutdown(_) if args.hang => continue,
                    Ctl::Shutdown(r) | Ctl::Exit(r) => r,
                    Ctl::Crash(code) => return code,
                    Ctl::Raise(sig) => raise(sig),
                    Ctl::Hang => {
                        frozen = true;
                        log.freeze();
                        rcon.set_hung();
                        continue;
                    }
                };
                // Clean exit: pending effects first, players drop, final line.
                while let Ok(a) = act_rx.try_recv() {
                    if let Action::Log(l) = a {
                        log.line(&l);
                    }
                }
                let names: Vec<String> = rcon.state().players.iter().map(|p| p.name.clone()).collect();
                for n in names {
                    let leave = rcon.state().leave(&n);
                    for a in leave.unwrap_or_default() {
                        match a {
                            Action::Log(l) => log.line(&l),
                            Action::Message(m) => { let _ = msg_tx.send(m); }
                            Action::Shutdown => {}
                        }
                    }
                }
                log.line(&format!("{FINAL_LINE} ({reason})."));
                // Closing the message channel lets the RCon task send what is queued and stop.
                drop(msg_tx);
                if let Some(t) = rcon_net_task.take() {
                    let _ = tokio::time::timeout(Duration::from_millis(300), t).await;
                }
                drop(game_socket);
                cleanup_active();
                return 0;
            }
        }
    }
}

/// Raises a crash signal on itself. Does not return unless the signal is somehow survived.
fn raise(sig: CrashSignal) -> ! {
    let s = sig.to_nix();
    // Rust's runtime installs a SIGSEGV/SIGBUS handler (stack-overflow guard) that swallows a
    // raised (non-fault) signal once and restores the default action: raising again terminates.
    for _ in 0..3 {
        let _ = nix::sys::signal::raise(s);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::abort();
}

fn spawn_signals(tx: mpsc::UnboundedSender<Ctl>) {
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, name) in [
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::interrupt(), "SIGINT"),
    ] {
        match signal(kind) {
            Ok(mut s) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send(Ctl::Shutdown(name.to_string())).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => eprintln!("arma3server: cannot handle {name}: {e}"),
        }
    }
}

fn spawn_control(ctx: Ctx, path: PathBuf, default_code: i32) {
    let mut w = control::Watcher::new(&path);
    tokio::spawn(async move {
        loop {
            sleep(control::POLL).await;
            for line in w.poll() {
                match control::parse(&line) {
                    Ok(Some(cmd)) => do_control(&ctx, cmd, default_code),
                    Ok(None) => {}
                    Err(e) => eprintln!("arma3server: control file {}: {e}", path.display()),
                }
            }
        }
    });
}

fn do_control(ctx: &Ctx, cmd: Command, default_code: i32) {
    let send = |c| {
        let _ = ctx.ctl.send(c);
    };
    match cmd {
        Command::Join(name) => join(ctx, name, None),
        Command::Leave(name) => leave(ctx, &name),
        Command::Chat { name, text } => {
            let r = ctx.rcon.state().chat(&name, &text);
            match r {
                Ok(a) => ctx.rcon.emit(a),
                Err(e) => eprintln!("arma3server: chat: {e}"),
            }
        }
        Command::Crash(code) => send(Ctl::Crash(code.unwrap_or(default_code))),
        Command::Signal(s) => send(Ctl::Raise(s)),
        Command::Hang => send(Ctl::Hang),
        Command::Log(text) => ctx.rcon.emit(vec![Action::Log(text)]),
        Command::Shutdown => send(Ctl::Shutdown("control shutdown".into())),
        Command::Exit => send(Ctl::Exit("control exit".into())),
    }
}

/// A player joins: connect, GUID, (later) verified, (later) out of the lobby; leaves after `stay`.
fn join(ctx: &Ctx, name: String, stay: Option<Duration>) {
    let port = rand::random_range(49152..65535);
    let r = ctx.rcon.state().join(&name, port);
    match r {
        Ok((_, actions)) => ctx.rcon.emit(actions),
        Err(e) => {
            eprintln!("arma3server: join refused: {e}");
            return;
        }
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        sleep(ctx.join_ping_delay).await;
        let ping = rand::random_range(18..140);
        let v = ctx.rcon.state().verify(&name, ping);
        ctx.rcon.emit(v);
        sleep(ctx.join_ping_delay).await;
        ctx.rcon.state().enter_game(&name);
        if let Some(stay) = stay {
            sleep(stay).await;
            leave(&ctx, &name);
        }
    });
}

fn leave(ctx: &Ctx, name: &str) {
    let r = ctx.rcon.state().leave(name);
    match r {
        Ok(a) => ctx.rcon.emit(a),
        Err(e) => eprintln!("arma3server: leave: {e}"),
    }
}

/// Sleeps `total / n` between entries.
async fn pace(total: Duration, n: usize) {
    if !total.is_zero() && n > 0 {
        sleep(total / u32::try_from(n).unwrap_or(u32::MAX)).await;
    }
}

fn mod_row(m: &str) -> String {
    let dir = m.rsplit(['/', '\\']).next().unwrap_or(m);
    format!(
        "{:>50} | {:>20} | {:>10} | {:>10} | {:>20} | {:>40} | {:>9} | {}",
        dir,
        dir,
        "false",
        "false",
        "GAME DIR",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "11fdd19c",
        m
    )
}

/// Everything the real server prints from start to `Game started.`.
async fn startup(ctx: &Ctx, args: &Args, cfg: &ServerCfg, cfg_missing: bool, be_on: bool) {
    let log = &ctx.log;
    let early_share = args.start_delay().mul_f64(0.6);
    let late_share = args.start_delay().mul_f64(0.4);

    // Before server.cfg: short timestamps.
    log.set_stamp(Stamp::Short);
    let mut early = replay::entries(replay::STARTUP);
    let table_at = early
        .iter()
        .position(|e| e.starts_with("====="))
        .unwrap_or(early.len());
    let mut table: Vec<String> = args.mods.iter().map(|m| mod_row(m)).collect();
    table.extend(replay::entries(replay::DLC_ROWS));
    table.extend(args.server_mods.iter().map(|m| mod_row(m)));
    early.splice(table_at..table_at, table);
    let n = early.len();
    for e in &early {
        log.line(e);
        pace(early_share, n).await;
    }

    // server.cfg loaded: its timeStampFormat applies from here on.
    if cfg_missing {
        log.line("Warning: server config file not found, using defaults");
    }
    log.set_stamp(cfg.stamp);
    let port = args.port();
    let (mission, world) = cfg.mission();
    let mut late = vec![
        format!(
            "Initializing Steam server - Game Port: {port}, Steam Query Port: {}",
            port.saturating_add(1)
        ),
        "Steam AppId from steam_appid.txt: 107410".to_string(),
        "Connected to Steam servers".to_string(),
        "Dedicated host created.".to_string(),
    ];
    if be_on {
        late.push("BattlEye Server: Initialized (v1.220)".to_string());
    }
    late.extend([
        "Host identity created.".to_string(),
        "Roles assigned.".to_string(),
        "Reading mission ...".to_string(),
        format!("Mission {mission} read from bank."),
        "Starting mission:".to_string(),
        format!(" Mission file: {mission} (__cur_mp)"),
        format!(" Mission world: {world}"),
        format!(" Mission directory: mpmissions\\__cur_mp.{world}\\"),
    ]);
    late.extend(replay::entries(replay::MISSION));
    late.push("Game started.".to_string());
    let n = late.len();
    for e in &late {
        log.line(e);
        pace(late_share, n).await;
    }
}

/// After `Game started.`: scripted players, load lines, chatter, flood.
async fn running(ctx: Ctx, args: Args) {
    // Scripted players, one every join interval.
    {
        let ctx = ctx.clone();
        let players = args.players();
        let interval = args.join_interval();
        let stay = args.stay;
        tokio::spawn(async move {
            for name in players {
                sleep(interval).await;
                join(&ctx, name, stay);
            }
        });
    }
    // Server load lines.
    {
        let ctx = ctx.clone();
        let every = args.load_interval();
        tokio::spawn(async move {
            let mut mem: u32 = 2113;
            loop {
                sleep(every).await;
                let players = ctx.rcon.state().players.len();
                let fps = rand::random_range(38..50);
                mem = (mem + rand::random_range(0..25)).min(9000);
                ctx.log.line(&format!(
                    "Server load: FPS {fps}, memory used: {mem} MB, out: {} Kbps, in: {} Kbps, NG:0, G:{}, BE-NG:0, BE-G:0, Players: {players} (L:0, R:0, B:0, G:{players}, D:0)",
                    20 + players * 31,
                    8 + players * 11,
                    1400 + players * 150,
                ));
            }
        });
    }
    // Replayed runtime output and, in demo mode, player chat.
    if let Some(every) = args.chatter() {
        let ctx = ctx.clone();
        let demo = args.demo;
        tokio::spawn(async move {
            let lines = replay::entries(replay::RUNTIME);
            const CHAT: [&str; 8] = [
                "hi all",
                "anyone on TeamSpeak?",
                "need a medic at the HQ",
                "o7",
                "where do we spawn?",
                "brb",
                "привет",
                "nice server: thanks!",
            ];
            let mut i = 0usize;
            loop {
                sleep(every).await;
                if let Some(l) = lines.get(i % lines.len().max(1)) {
                    ctx.log.line(l);
                }
                if demo && i % 2 == 1 {
                    let names: Vec<String> = ctx
                        .rcon
                        .state()
                        .players
                        .iter()
                        .map(|p| p.name.clone())
                        .collect();
                    if !names.is_empty() {
                        let who = &names[rand::random_range(0..names.len())];
                        let text = CHAT[rand::random_range(0..CHAT.len())];
                        let r = ctx.rcon.state().chat(who, text);
                        if let Ok(a) = r {
                            ctx.rcon.emit(a);
                        }
                    }
                }
                i = i.wrapping_add(1);
            }
        });
    }
    // Flood.
    if let Some(rate) = args.flood_rate.filter(|r| *r > 0.0) {
        let log = ctx.log.clone();
        let total = args.flood_lines;
        tokio::spawn(flood(log, rate, total, args.flood_tagged));
    }
}

async fn flood(log: Log, rate: f64, total: Option<u64>, tagged: bool) {
    let lines = replay::single_lines();
    let tick = if rate >= 100.0 {
        Duration::from_millis(10)
    } else {
        Duration::from_secs_f64(1.0 / rate)
    };
    let per_tick = rate * tick.as_secs_f64();
    let begin = Instant::now();
    let mut written: u64 = 0;
    let mut ticks: u64 = 0;
    loop {
        ticks += 1;
        // Catch up on a late timer so the average rate holds.
        let due = (per_tick * ticks as f64) as u64;
        while written < due {
            if total.is_some_and(|t| written >= t) {
                return;
            }
            let i = usize::try_from(written).unwrap_or(0) % lines.len().max(1);
            if tagged {
                let micros = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros())
                    .unwrap_or(0);
                log.line(&format!("flood #{written} t={micros}"));
            } else if let Some(l) = lines.get(i) {
                log.line(l);
            }
            written += 1;
        }
        if total.is_some_and(|t| written >= t) {
            return;
        }
        sleep_until(begin + tick.mul_f64(ticks as f64)).await;
    }
}

//! `cargo bench --bench stdio`: how fast the release binary starts, how much
//! memory it holds and what it adds to a call, measured the way an MCP
//! client uses it (raw JSON-RPC lines over the child's stdin/stdout) against
//! two fake HiEnergys on 127.0.0.1, side by side in the table:
//! - **h1**: plain HTTP/1.1 with keep-alive (`http://127.0.0.1:PORT`),
//!   hand-written below;
//! - **TLS h2**: HTTPS with HTTP/2 as production is (`https://localhost:PORT`,
//!   tests/tls_fake: hyper behind rustls, a CA made at run time). The server
//!   trusts the system's roots, loaded as it loads them in production, plus
//!   that CA (through `SSL_CERT_FILE` and `SSL_CERT_DIR`).
//!
//! Then, against a wiremock HiEnergy that keeps what was POSTed and lists
//! it back, the look for an existing contact before each POST: a new
//! 100-contact list and the same list again in a new session (requests per
//! contact, POSTs, wall time against the ideal), and search_advertisers'
//! time per call beside add_contact's (`HIENERGY_BENCH_ONLY=existing` runs
//! this part alone).
//!
//! Needs nothing outside the repository.
//!
//! Options (after `--`): `--latency-ms N` upstream latency for the
//! sequential run (default 0), `--burst-latency-ms N` for the concurrent run
//! (default 100), `--calls N` (500), `--burst N` (200), `--cold N` spawns
//! per column (20), `--first N` fresh sessions per first-call figure (10),
//! `--list N` contacts in the add_contacts run (100), `--list-latency-ms N`
//! its upstream latency (50), `--bin PATH` (or HIENERGY_MCP_BIN) to measure
//! another build.
//!
//! The binary measured is the one `cargo build --release` makes, built here
//! if need be: the copy cargo builds for a bench has the dev-dependencies'
//! features (tokio "full", rmcp's client) compiled in, so it is neither the
//! size nor quite the program that users run.

// Test and bench code: a failed unwrap is a failed test (clippy.toml allows
// this inside #[test] functions; here it covers the harness too).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/kept_fake/mod.rs"]
mod kept_fake;
#[path = "../tests/tls_fake/mod.rs"]
mod tls_fake;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tls_fake::TlsFake;

const KEY: &str = "hk_bench_0123456789";
const CONTACTS_PATH: &str = "/api/v1/contacts/add";
const WARM_UP: usize = 20;
/// What a client with a model thinking leaves between tools/list and its
/// first call, at the least.
const THINKING: Duration = Duration::from_millis(100);
const COLUMNS: [&str; 2] = ["h1", "TLS h2"];

struct Options {
    latency: Duration,
    burst_latency: Duration,
    calls: usize,
    burst: usize,
    cold: usize,
    first: usize,
    list: usize,
    list_latency: Duration,
    bin: Option<PathBuf>,
}

impl Options {
    fn parse() -> Self {
        let mut options = Self {
            latency: Duration::ZERO,
            burst_latency: Duration::from_millis(100),
            calls: 500,
            burst: 200,
            cold: 20,
            first: 10,
            list: 100,
            list_latency: Duration::from_millis(50),
            bin: std::env::var_os("HIENERGY_MCP_BIN").map(PathBuf::from),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            let ms =
                |v: String| Duration::from_secs_f64(v.parse::<f64>().expect("milliseconds") / 1e3);
            let count = |v: String, what: &str| -> usize {
                v.parse().unwrap_or_else(|_| panic!("{what} N"))
            };
            match arg.as_str() {
                "--latency-ms" => options.latency = ms(value()),
                "--burst-latency-ms" => options.burst_latency = ms(value()),
                "--calls" => options.calls = count(value(), "--calls"),
                "--burst" => options.burst = count(value(), "--burst"),
                "--cold" => options.cold = count(value(), "--cold"),
                "--first" => options.first = count(value(), "--first"),
                "--list" => options.list = count(value(), "--list"),
                "--list-latency-ms" => options.list_latency = ms(value()),
                "--bin" => options.bin = Some(PathBuf::from(value())),
                // cargo bench passes --bench; filters and the like mean nothing here.
                _ => {}
            }
        }
        options
    }
}

fn main() {
    let options = Options::parse();
    let bin = options.bin.clone().unwrap_or_else(cargo_build_release);
    if existing_check::only() {
        existing_check::run(&bin);
        return;
    }
    let h1 = H1Fake::start();
    let tls = Tls::start();
    let upstreams: [&dyn Upstream; 2] = [&h1, &tls];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for up in upstreams {
        eprintln!("{}: {}", up.name(), up.describe());
    }
    eprintln!("measuring {} ...", bin.display());

    // Cold start, the two columns in turn so that load from elsewhere on
    // the machine hits each alike. Each is started once unmeasured before
    // its measured start: here the first start of a program right after
    // another program exited took 2–3 ms longer.
    let mut cold = [Cold::default(), Cold::default()];
    let mut unmeasured = Cold::default();
    for _ in 0..options.cold {
        for (up, cold) in upstreams.iter().zip(&mut cold) {
            unmeasured.spawn(server_command(&bin, *up));
            cold.spawn(server_command(&bin, *up));
        }
    }

    // The first real call of a fresh session, the two columns in turn.
    let mut first_now = [Vec::new(), Vec::new()];
    let mut first_later = [Vec::new(), Vec::new()];
    for _ in 0..options.first {
        for (i, up) in upstreams.iter().enumerate() {
            up.set_latency(Duration::ZERO);
            first_now[i].push(first_call(&bin, *up, None));
            first_later[i].push(first_call(&bin, *up, Some(THINKING)));
        }
    }

    let steady = upstreams.map(|up| steady(&bin, up, &options, &rt));
    let lists = upstreams.map(|up| list_vs_sequential(&bin, up, &options));

    let mut table = Table::default();
    table.section(&format!(
        "cold start ({} spawns each, interleaved)",
        options.cold
    ));
    table.row(
        "spawn → initialize answer, median",
        cold.each(|c| {
            let median = percentile(&c.starts, 50.0);
            (ms(median), median <= Duration::from_millis(5))
        }),
        "≤ 5 ms",
    );
    table.info(
        "spawn → initialize answer, max",
        cold.each(|c| ms(max(&c.starts))),
    );
    table.info(
        "RSS right after initialize (anon + file)",
        cold.each(|c| {
            let (rss, anon, file) = c.rss;
            format!("{} ({} + {})", mib(rss), mib(anon), mib(file))
        }),
    );

    let warm = steady.each(|s| percentile(&s.through_server, 50.0));
    table.section(&format!(
        "first real call of a fresh session ({} sessions each, upstream latency 0)",
        options.first
    ));
    table.info(
        "sent right after initialize + initialized, median",
        first_now.each(|f| ms(percentile(f, 50.0))),
    );
    table.info(
        "… over a warm call (the sequential run's p50)",
        first_now.each_with(&warm, |f, w| ms(percentile(f, 50.0).saturating_sub(*w))),
    );
    table.info(
        &format!("sent after tools/list and a {} pause, median", ms(THINKING)),
        first_later.each(|f| ms(percentile(f, 50.0))),
    );
    table.row(
        "… over a warm call",
        first_later.each_with(&warm, |f, w| {
            let over = percentile(f, 50.0).saturating_sub(*w);
            (ms(over), over <= Duration::from_millis(3))
        }),
        "≤ 3 ms",
    );
    table.info(
        "max of either",
        first_now.each_with(&first_later, |a, b| ms(max(a).max(max(b)))),
    );

    table.section(&format!(
        "sequential: {} tools/call over one session, each beside the same POST sent straight to the fake",
        options.calls
    ));
    table.info(
        "emails distinct, duplicate guard on (the real path); upstream latency",
        [ms(options.latency)],
    );
    table.info(
        "through the server, p50 / p99",
        steady.each(|s| p50_p99(&s.through_server)),
    );
    table.info(
        "direct POST, reused reqwest client configured alike, p50 / p99",
        steady.each(|s| p50_p99(&s.straight)),
    );
    table.row(
        "server overhead per call, p50",
        steady.each(|s| {
            let overhead = s.overhead(50.0);
            (ms(overhead), overhead <= Duration::from_micros(200))
        }),
        "≤ 0.2 ms",
    );
    table.info(
        "server overhead per call, p99",
        steady.each(|s| ms(s.overhead(99.0))),
    );
    table.info(
        "server CPU time per call, all threads",
        steady.each(|s| ms(s.cpu_per_call)),
    );
    table.info(
        "connections opened, server and direct client together",
        steady.each(|s| s.opened.to_string()),
    );

    table.section(&format!(
        "concurrency: {} tools/call written at once to the same session, upstream latency {}",
        options.burst,
        ms(options.burst_latency)
    ));
    for (round, label) in ["first burst", "second burst"].into_iter().enumerate() {
        let ratio = |s: &Steady| {
            let b = &s.bursts[round];
            b.server_wall.as_secs_f64() / b.direct_wall.as_secs_f64()
        };
        let figure = |s: &Steady| {
            format!(
                "{} ({:.2}× floor)",
                ms(s.bursts[round].server_wall),
                ratio(s)
            )
        };
        let what = format!("through the server, {label}");
        if round == 0 {
            table.row(
                &what,
                steady.each(|s| (figure(s), ratio(s) <= 1.5)),
                "≤ 1.5× floor",
            );
        } else {
            table.info(&what, steady.each(figure));
        }
        table.info(
            &format!("floor: direct concurrent POSTs, {label}"),
            steady.each(|s| ms(s.bursts[round].direct_wall)),
        );
        table.info(
            &format!("connections the server opened, {label}"),
            steady.each(|s| s.bursts[round].opened.to_string()),
        );
    }

    let n = options.list;
    let concurrency = usize::from(hienergy_mcp::config::DEFAULT_BATCH_CONCURRENCY);
    let ideal = options.list_latency * n.div_ceil(concurrency) as u32;
    table.section(&format!(
        "a list: {n} contacts, upstream latency {}, batch concurrency {concurrency} (default), a session each; ideal {}",
        ms(options.list_latency),
        ms(ideal)
    ));
    let list_ratio = |l: &ListRun| l.wall.as_secs_f64() / ideal.as_secs_f64();
    table.row(
        "one add_contacts call, wall time",
        lists.each(|l| {
            (
                format!("{} ({:.2}× ideal)", ms(l.wall), list_ratio(l)),
                list_ratio(l) <= 1.2,
            )
        }),
        "≤ 1.2× ideal (ceil(n / concurrency) × latency)",
    );
    table.info(
        "one add_contacts call, POSTs",
        lists.each(|l| l.posts.to_string()),
    );
    table.info(
        "one add_contacts call, peak RSS (VmHWM)",
        lists.each(|l| mib(l.hwm)),
    );
    table.info(
        &format!("{n} sequential add_contact calls, wall time"),
        lists.each(|l| {
            format!(
                "{} ({:.1}× the list call)",
                ms(l.seq_wall),
                l.seq_wall.as_secs_f64() / l.wall.as_secs_f64()
            )
        }),
    );
    table.info(
        &format!("{n} sequential add_contact calls, POSTs"),
        lists.each(|l| l.seq_posts.to_string()),
    );
    table.info(
        &format!("{n} sequential add_contact calls, peak RSS (VmHWM)"),
        lists.each(|l| mib(l.seq_hwm)),
    );

    table.section("memory of the server process (/proc/PID/status)");
    let limits = [12 * 1024, 8 * 1024];
    table.row(
        &format!("peak RSS (VmHWM), session with {} in flight", options.burst),
        steady.each_with(&limits, |s, limit| (mib(s.hwm), s.hwm <= *limit)),
        "≤ 12 MiB h1, ≤ 8 MiB TLS h2",
    );
    table.info(
        "… of which: anon + file, at the largest anon sampled (2 ms) in flight",
        steady.each(|s| format!("{} + {}", mib(s.burst_anon), mib(s.burst_file))),
    );
    table.info(
        "peak RSS after the sequential run",
        steady.each(|s| mib(s.seq_hwm)),
    );
    table.info(
        "RSS at the end (connections pooled): anon + file",
        steady.each(|s| format!("{} + {}", mib(s.end_anon), mib(s.end_file))),
    );
    table.info("threads at the end", steady.each(|s| s.threads.to_string()));

    table.section("exit and size");
    table.info(
        "exit after stdin closes, idle server (median)",
        cold.each(|c| ms(percentile(&c.exits, 50.0))),
    );
    table.info(
        "exit after stdin closes, after the run",
        steady.each(|s| ms(s.busy_exit)),
    );
    let (built, stripped) = binary_size(&bin);
    match stripped {
        Some(stripped) => {
            table.row(
                "release binary, stripped",
                [(megabytes(stripped), stripped <= 8_000_000)],
                "≤ 8 MB",
            );
            table.info("release binary as built", [megabytes(built)]);
        }
        None => table.row(
            "release binary as built (no `strip` found)",
            [(megabytes(built), built <= 8_000_000)],
            "≤ 8 MB",
        ),
    }

    println!();
    println!("hienergy-mcp stdio benchmark: {}", bin.display());
    println!("machine: {}", machine());
    for up in upstreams {
        println!("{}: {}", up.name(), up.describe());
    }
    println!("{}", table.render(&COLUMNS));
    existing_check::run(&bin);
}

/// Figures per column, in the order of [`COLUMNS`].
trait EachColumn<T> {
    fn each<R>(&self, f: impl Fn(&T) -> R) -> [R; 2];
    fn each_with<U, R>(&self, other: &[U; 2], f: impl Fn(&T, &U) -> R) -> [R; 2];
}

impl<T> EachColumn<T> for [T; 2] {
    fn each<R>(&self, f: impl Fn(&T) -> R) -> [R; 2] {
        [f(&self[0]), f(&self[1])]
    }

    fn each_with<U, R>(&self, other: &[U; 2], f: impl Fn(&T, &U) -> R) -> [R; 2] {
        [f(&self[0], &other[0]), f(&self[1], &other[1])]
    }
}

// --- the measurements ------------------------------------------------------

/// Spawns until the initialize answer, then closes stdin and times the
/// exit of the idle program.
#[derive(Default)]
struct Cold {
    starts: Vec<Duration>,
    exits: Vec<Duration>,
    /// VmRSS, RssAnon and RssFile of the last spawn, right after initialize.
    rss: (u64, u64, u64),
}

impl Cold {
    fn spawn(&mut self, cmd: Command) {
        let started = Instant::now();
        let mut session = Session::start(cmd);
        session.initialize();
        self.starts.push(started.elapsed());
        let pid = session.child.id();
        self.rss = (
            proc_status_kib(pid, "VmRSS:"),
            proc_status_kib(pid, "RssAnon:"),
            proc_status_kib(pid, "RssFile:"),
        );
        self.exits.push(session.close());
    }
}

/// A fresh session's first real call, timed from its request to its
/// answer; after `pause`, if given, spent as a client with a model spends
/// it: tools/list, then thinking.
fn first_call(bin: &Path, up: &dyn Upstream, pause: Option<Duration>) -> Duration {
    let mut session = Session::start(server_command(bin, up));
    session.initialize();
    if let Some(pause) = pause {
        session.tools_list(1);
        std::thread::sleep(pause);
    }
    let before = up.requests();
    let started = Instant::now();
    session.call(2, "first@example.com", false);
    let elapsed = started.elapsed();
    assert_eq!(up.requests() - before, 1, "the call must reach the fake");
    session.close();
    elapsed
}

/// One session: sequential calls, then two bursts, then its memory.
struct Steady {
    through_server: Vec<Duration>,
    straight: Vec<Duration>,
    cpu_per_call: Duration,
    opened: u64,
    seq_hwm: u64,
    bursts: Vec<Burst>,
    hwm: u64,
    /// The largest anonymous RSS sampled during the bursts, and the
    /// file-backed RSS at that sample, in KiB.
    burst_anon: u64,
    burst_file: u64,
    end_anon: u64,
    end_file: u64,
    threads: u64,
    busy_exit: Duration,
}

struct Burst {
    server_wall: Duration,
    direct_wall: Duration,
    opened: u64,
}

impl Steady {
    fn overhead(&self, p: f64) -> Duration {
        percentile(&self.through_server, p).saturating_sub(percentile(&self.straight, p))
    }
}

fn steady(
    bin: &Path,
    up: &dyn Upstream,
    options: &Options,
    rt: &tokio::runtime::Runtime,
) -> Steady {
    let direct = up.direct_client();
    let url = up.url();

    // Sequential calls, a server call and a direct POST in turn so that
    // load from elsewhere on the machine hits both alike. The first calls
    // of each open a connection and are not counted.
    up.set_latency(options.latency);
    let mut session = Session::start(server_command(bin, up));
    session.initialize();
    let pid = session.child.id();
    let mut id = 1u64;
    let mut through_server = Vec::with_capacity(options.calls);
    let mut straight = Vec::with_capacity(options.calls);
    let before = up.requests();
    let connections = up.connections();
    let mut cpu_before = Duration::ZERO;
    for i in 0..WARM_UP + options.calls {
        if i == WARM_UP {
            cpu_before = cpu_time(pid);
        }
        let email = format!("seq{i}@example.com");
        let started = Instant::now();
        session.call(id, &email, false);
        let server_time = started.elapsed();
        id += 1;
        let started = Instant::now();
        rt.block_on(direct_post(&direct, &url, &email));
        let direct_time = started.elapsed();
        if i >= WARM_UP {
            through_server.push(server_time);
            straight.push(direct_time);
        }
    }
    let cpu_per_call = (cpu_time(pid) - cpu_before) / options.calls as u32;
    assert_eq!(
        up.requests() - before,
        2 * (WARM_UP + options.calls) as u64,
        "every call must reach the fake"
    );
    let opened = up.connections() - connections;
    let seq_hwm = proc_status_kib(pid, "VmHWM:");

    // Concurrency: the whole burst written at once to the same session,
    // then the same number of POSTs straight to the fake. The first round
    // opens what connections it needs; the second finds them pooled.
    up.set_latency(options.burst_latency);
    let mut bursts = Vec::new();
    let mut burst_peak = (0, 0);
    for tag in ["first", "second"] {
        let before = up.requests();
        let connections = up.connections();
        let started = Instant::now();
        let peak = session.burst(&mut id, options.burst, tag);
        burst_peak = burst_peak.max(peak);
        let server_wall = started.elapsed();
        let opened = up.connections() - connections;
        let started = Instant::now();
        rt.block_on(direct_burst(&direct, &url, options.burst, tag));
        let direct_wall = started.elapsed();
        assert_eq!(up.requests() - before, 2 * options.burst as u64);
        bursts.push(Burst {
            server_wall,
            direct_wall,
            opened,
        });
    }

    Steady {
        through_server,
        straight,
        cpu_per_call,
        opened,
        seq_hwm,
        bursts,
        hwm: proc_status_kib(pid, "VmHWM:"),
        burst_anon: burst_peak.0,
        burst_file: burst_peak.1,
        end_anon: proc_status_kib(pid, "RssAnon:"),
        end_file: proc_status_kib(pid, "RssFile:"),
        threads: proc_status_kib(pid, "Threads:"),
        busy_exit: session.close(),
    }
}

struct ListRun {
    wall: Duration,
    posts: u64,
    hwm: u64,
    seq_wall: Duration,
    seq_posts: u64,
    seq_hwm: u64,
}

/// The same contacts added two ways, each in a session of its own so that
/// its peak memory is its own: one add_contacts call with the whole list,
/// and one add_contact call after another.
fn list_vs_sequential(bin: &Path, up: &dyn Upstream, options: &Options) -> ListRun {
    let n = options.list;
    up.set_latency(options.list_latency);

    let mut session = Session::start(server_command(bin, up));
    session.initialize();
    let before = up.requests();
    let started = Instant::now();
    // The POST path alone, against the POST-only fakes.
    let summary = session.list_call(1, n, "list", "add");
    let wall = started.elapsed();
    let posts = up.requests() - before;
    let hwm = proc_status_kib(session.child.id(), "VmHWM:");
    session.close();
    assert_eq!(summary["created"], json!(n), "{summary}");
    assert_eq!(posts, n as u64, "every contact must reach the fake once");

    let mut session = Session::start(server_command(bin, up));
    session.initialize();
    let before = up.requests();
    let started = Instant::now();
    for i in 0..n {
        session.call(i as u64 + 1, &format!("one-by-one{i}@example.com"), false);
    }
    let seq_wall = started.elapsed();
    let seq_posts = up.requests() - before;
    let seq_hwm = proc_status_kib(session.child.id(), "VmHWM:");
    session.close();
    ListRun {
        wall,
        posts,
        hwm,
        seq_wall,
        seq_posts,
        seq_hwm,
    }
}

/// `cargo build --release` of the server, as users build it; cargo has
/// released its lock on the target directory before running a bench.
fn cargo_build_release() -> PathBuf {
    let name = "hienergy-mcp";
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building {name} (cargo build --release --bin {name}) ...");
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--release",
            "--bin",
            name,
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo build --release --bin {name} failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo named no {name} executable"))
}

// --- the fake HiEnergys, one column each ------------------------------------

/// What every measurement needs of a fake HiEnergy, so that each runs
/// unchanged for both columns.
trait Upstream {
    fn name(&self) -> &'static str;
    /// What it is, for the header of the table.
    fn describe(&self) -> String;
    fn base_url(&self) -> String;
    fn url(&self) -> String {
        format!("{}{CONTACTS_PATH}", self.base_url())
    }
    /// The server's environment for this fake, beyond the common settings.
    fn configure(&self, cmd: &mut Command);
    /// A reqwest client configured like the server's own for this fake, so
    /// that the difference is the server and nothing else.
    fn direct_client(&self) -> reqwest::Client;
    fn set_latency(&self, latency: Duration);
    fn requests(&self) -> u64;
    fn connections(&self) -> u64;
}

fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .no_proxy()
}

/// HTTP/1.1 with keep-alive on its own thread, answering every POST with
/// 201 and a created contact after the configured latency.
struct H1Fake {
    addr: SocketAddr,
    latency_us: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    /// Stops the fake when dropped.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Upstream for H1Fake {
    fn name(&self) -> &'static str {
        COLUMNS[0]
    }

    fn describe(&self) -> String {
        format!(
            "{}, a hand-written HTTP/1.1 keep-alive fake; the server's own trust store",
            self.base_url()
        )
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn configure(&self, cmd: &mut Command) {
        cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    }

    fn direct_client(&self) -> reqwest::Client {
        client_builder().build().expect("client")
    }

    fn set_latency(&self, latency: Duration) {
        self.latency_us
            .store(latency.as_micros() as u64, Ordering::SeqCst);
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// tests/tls_fake, trusted the way production trusts HiEnergy's
/// certificate: the system's roots, loaded as rustls-native-certs loads
/// them when nothing is set (the bundle openssl-probe finds, then its
/// certificate directories), and beside them a directory holding only the
/// fake's CA. Where no system bundle is found, only the CA.
struct Tls {
    fake: TlsFake,
    cert_file: PathBuf,
    cert_dirs: OsString,
    system_roots: bool,
}

impl Tls {
    fn start() -> Self {
        let fake = TlsFake::start();
        let bundle = [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
        let mut dirs: Vec<PathBuf> = ["/etc/ssl/certs", "/etc/pki/tls/certs"]
            .into_iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect();
        let system_roots = bundle.is_some();
        if !system_roots {
            dirs.clear();
        }
        // The file is read first and the directories after it, skipping
        // what was read already (by inode), so the CA file is read once.
        dirs.push(fake.ca_file().parent().expect("CA dir").to_owned());
        let cert_file = bundle.unwrap_or_else(|| fake.ca_file().to_owned());
        let cert_dirs = std::env::join_paths(&dirs).expect("SSL_CERT_DIR");
        Self {
            fake,
            cert_file,
            cert_dirs,
            system_roots,
        }
    }
}

impl Upstream for Tls {
    fn name(&self) -> &'static str {
        COLUMNS[1]
    }

    fn describe(&self) -> String {
        let trust = if self.system_roots {
            "the system's roots as production loads them, and the fake's CA"
        } else {
            "only the fake's CA (no system bundle found)"
        };
        format!(
            "{}, hyper over rustls (tests/tls_fake), ALPN h2; trusted: {trust} (SSL_CERT_FILE={}, SSL_CERT_DIR={})",
            self.base_url(),
            self.cert_file.display(),
            self.cert_dirs.to_string_lossy()
        )
    }

    fn base_url(&self) -> String {
        self.fake.base_url()
    }

    fn configure(&self, cmd: &mut Command) {
        cmd.env("SSL_CERT_FILE", &self.cert_file)
            .env("SSL_CERT_DIR", &self.cert_dirs);
    }

    fn direct_client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.fake.ca().pem().as_bytes()).expect("CA");
        client_builder()
            .tls_certs_only([ca])
            .build()
            .expect("client")
    }

    fn set_latency(&self, latency: Duration) {
        self.fake.set_latency(latency);
    }

    fn requests(&self) -> u64 {
        self.fake.requests()
    }

    fn connections(&self) -> u64 {
        self.fake.connections()
    }
}

// --- the server over stdio -------------------------------------------------

/// The server as an MCP client spawns it, with logs turned down so that
/// stderr writes are not what gets measured.
fn server_command(bin: &Path, up: &dyn Upstream) -> Command {
    let mut cmd = base_command(bin, &up.base_url());
    up.configure(&mut cmd);
    cmd
}

/// The server pointed at `base_url`, with the key and nothing from this
/// shell's environment that would change what is measured.
fn base_command(bin: &Path, base_url: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--log-level", "warn"])
        .env("HIENERGY_BASE_URL", base_url)
        .env("HIENERGY_API_KEY", KEY)
        .env("NO_PROXY", "*");
    for var in [
        "HI_ENERGY_API_KEY",
        "HIENERGY_API_KEY_FILE",
        "HIENERGY_LOG_LEVEL",
        "HIENERGY_DEDUPE_WINDOW",
        "RUST_LOG",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A program spoken to in raw JSON-RPC lines over its stdio; its stderr is
/// discarded.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Session {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            stdout,
            line: String::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    fn recv(&mut self) -> Value {
        self.line.clear();
        let n = self.stdout.read_line(&mut self.line).expect("read stdout");
        assert!(n > 0, "the server closed stdout");
        serde_json::from_str(&self.line).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.line))
    }

    fn initialize(&mut self) {
        let mut lines = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"}
        }})
        .to_string();
        lines.push('\n');
        self.send(lines.as_bytes());
        let answer = self.recv();
        assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
        self.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
    }

    fn tools_list(&mut self, id: u64) {
        self.send(
            format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/list\",\"params\":{{}}}}\n"
            )
            .as_bytes(),
        );
        let answer = self.recv();
        assert!(answer["result"]["tools"].is_array(), "{answer}");
    }

    /// One add_contact call, a real one or a `dry_run`.
    fn call(&mut self, id: u64, email: &str, dry_run: bool) {
        self.send(call_line(id, email, dry_run).as_bytes());
        let answer = self.recv();
        if dry_run {
            assert_eq!(
                answer["result"]["structuredContent"]["dry_run"],
                json!(true),
                "{answer}"
            );
        } else {
            check_answer(&answer);
        }
    }

    /// One add_contacts call with `n` distinct contacts; its summary.
    fn list_call(&mut self, id: u64, n: usize, tag: &str, if_exists: &str) -> Value {
        let contacts: Vec<Value> = (0..n)
            .map(|i| json!({"advertiser_id": 42, "email": format!("{tag}{i}@example.com"), "name": "Bench User"}))
            .collect();
        let mut line = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "add_contacts",
            "arguments": {"contacts": contacts, "if_exists": if_exists}
        }})
        .to_string();
        line.push('\n');
        self.send(line.as_bytes());
        self.recv()["result"]["structuredContent"]["summary"].clone()
    }

    /// Writes `n` calls in one go (from another thread, so that neither
    /// side can block on a full pipe) and reads until every answer is in.
    /// Returns the server's largest anonymous RSS seen meanwhile (sampled
    /// every 2 ms) and its file-backed RSS at that moment, in KiB: what
    /// VmHWM's single figure is made of.
    fn burst(&mut self, id: &mut u64, n: usize, tag: &str) -> (u64, u64) {
        let mut lines = String::new();
        for i in 0..n {
            lines.push_str(&call_line(
                *id,
                &format!("burst-{tag}{i}@example.com"),
                false,
            ));
            *id += 1;
        }
        let stdin = self.stdin.as_mut().expect("stdin open");
        let pid = self.child.id();
        let answered = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                stdin.write_all(lines.as_bytes()).expect("write stdin");
                stdin.flush().expect("flush stdin");
            });
            let peak = scope.spawn(|| {
                let mut peak = (0, 0);
                while !answered.load(Ordering::SeqCst) {
                    let anon = proc_status_kib(pid, "RssAnon:");
                    if anon > peak.0 {
                        peak = (anon, proc_status_kib(pid, "RssFile:"));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                peak
            });
            for _ in 0..n {
                self.line.clear();
                let read = self.stdout.read_line(&mut self.line).expect("read stdout");
                assert!(read > 0, "the server closed stdout");
                let answer: Value = serde_json::from_str(&self.line).expect("JSON");
                check_answer(&answer);
            }
            answered.store(true, Ordering::SeqCst);
            peak.join().expect("the RSS sampler")
        })
    }

    /// Closes stdin and returns how long the process took to exit.
    fn close(mut self) -> Duration {
        drop(self.stdin.take());
        let started = Instant::now();
        let status = self.child.wait().expect("wait");
        let elapsed = started.elapsed();
        assert!(status.success(), "exit status {status}");
        elapsed
    }
}

fn call_line(id: u64, email: &str, dry_run: bool) -> String {
    // The POST path alone, against the POST-only fakes: the look before
    // it is measured in `existing_check`.
    let mut arguments =
        json!({"advertiser_id": 42, "email": email, "name": "Bench User", "if_exists": "add"});
    if dry_run {
        arguments["dry_run"] = json!(true);
    }
    let mut line = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "add_contact",
        "arguments": arguments
    }})
    .to_string();
    line.push('\n');
    line
}

fn check_answer(answer: &Value) {
    let result = &answer["result"];
    assert!(
        result.is_object() && result["isError"] != json!(true),
        "the call failed: {answer}"
    );
    assert_eq!(
        result["structuredContent"]["replayed"],
        json!(false),
        "{answer}"
    );
}

// --- straight to the fake --------------------------------------------------

async fn direct_post(client: &reqwest::Client, url: &str, email: &str) {
    let body = json!({"contact": {"advertiser_id": 42, "email": email, "name": "Bench User"}});
    let response = client
        .post(url)
        .header("X-Api-Key", KEY)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("direct POST");
    assert_eq!(response.status().as_u16(), 201);
    let body = response.bytes().await.expect("body");
    assert!(!body.is_empty());
}

async fn direct_burst(client: &reqwest::Client, url: &str, n: usize, tag: &str) {
    let posts = (0..n).map(|i| {
        let email = format!("direct-{tag}{i}@example.com");
        async move { direct_post(client, url, &email).await }
    });
    futures::future::join_all(posts).await;
}

// --- the h1 fake -------------------------------------------------------------

impl H1Fake {
    fn start() -> Self {
        let latency_us = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (latency, count, accepted) =
            (latency_us.clone(), requests.clone(), connections.clone());
        let (addr, stop) = tls_fake::serve_on_thread("h1-fake", move |stream| {
            accepted.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_nodelay(true);
            serve_connection(stream, latency.clone(), count.clone())
        });
        Self {
            addr,
            latency_us,
            requests,
            connections,
            _stop: stop,
        }
    }
}
async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    latency_us: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (head_len, body_len) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break (end + 4, content_length(&buf[..end]));
            }
            if !matches!(stream.read_buf(&mut buf).await, Ok(n) if n > 0) {
                return;
            }
        };
        while buf.len() < head_len + body_len {
            if !matches!(stream.read_buf(&mut buf).await, Ok(n) if n > 0) {
                return;
            }
        }
        let head = String::from_utf8_lossy(&buf[..head_len]).to_ascii_lowercase();
        assert!(
            head.starts_with(&format!("post {CONTACTS_PATH} ")),
            "{head}"
        );
        assert!(
            head.contains(&format!("x-api-key: {}", KEY.to_ascii_lowercase())),
            "{head}"
        );
        let request: Value =
            serde_json::from_slice(&buf[head_len..head_len + body_len]).expect("JSON body");
        buf.drain(..head_len + body_len);
        let id = requests.fetch_add(1, Ordering::SeqCst) + 1;
        let latency = latency_us.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_micros(latency)).await;
        }
        let body = tls_fake::created(id, &request).to_string();
        let response = format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

// --- figures ---------------------------------------------------------------

/// Nearest-rank percentile.
fn p50_p99(samples: &[Duration]) -> String {
    format!(
        "{} / {}",
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 99.0))
    )
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn max(samples: &[Duration]) -> Duration {
    samples.iter().copied().max().unwrap_or_default()
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Time the process has spent on a CPU, all threads, from the scheduler's
/// own accounting (nanoseconds, unlike the tick-based utime).
fn cpu_time(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc task");
    let nanos = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Size as built, and of a stripped copy when `strip` is available.
fn binary_size(bin: &Path) -> (u64, Option<u64>) {
    let built = std::fs::metadata(bin).expect("binary").len();
    let copy = std::env::temp_dir().join(format!("hienergy-mcp-bench-{}", std::process::id()));
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(bin)
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&copy);
    (built, stripped)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cpus} CPUs, {model}; load average {load}")
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB ({bytes} B)", bytes as f64 / 1e6)
}

/// Rows of figures, one value per column (or one value for the whole row),
/// and where a row has a target, each value judged against it.
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

enum Row {
    Section(String),
    Figure {
        what: String,
        cells: Vec<(String, Option<bool>)>,
        target: Option<String>,
    },
}

impl Table {
    fn section(&mut self, title: &str) {
        self.rows.push(Row::Section(title.to_owned()));
    }

    fn row(&mut self, what: &str, cells: impl IntoIterator<Item = (String, bool)>, target: &str) {
        self.rows.push(Row::Figure {
            what: what.to_owned(),
            cells: cells.into_iter().map(|(v, met)| (v, Some(met))).collect(),
            target: Some(target.to_owned()),
        });
    }

    fn info(&mut self, what: &str, values: impl IntoIterator<Item = String>) {
        self.rows.push(Row::Figure {
            what: what.to_owned(),
            cells: values.into_iter().map(|v| (v, None)).collect(),
            target: None,
        });
    }

    fn render(&self, columns: &[&str]) -> String {
        let figures = || {
            self.rows.iter().filter_map(|r| match r {
                Row::Figure { what, cells, .. } => Some((what, cells)),
                Row::Section(_) => None,
            })
        };
        let w_what = figures().map(|(w, _)| w.chars().count()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns.len())
            .map(|i| {
                figures()
                    .filter_map(|(_, cells)| cells.get(i))
                    .map(|(v, _)| v.chars().count())
                    .chain([columns[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |what: &str, values: &[&str]| {
            let mut out = format!("  {what:<w_what$}");
            for (i, width) in widths.iter().enumerate() {
                let value = values.get(i).copied().unwrap_or("");
                out.push_str(&format!("  {value:>width$}"));
            }
            out
        };
        let mut out = line("", columns).trim_end().to_owned();
        out.push('\n');
        for row in &self.rows {
            match row {
                Row::Section(title) => out.push_str(&format!("\n{title}\n")),
                Row::Figure {
                    what,
                    cells,
                    target,
                } => {
                    let values: Vec<&str> = cells.iter().map(|(v, _)| v.as_str()).collect();
                    let mut text = line(what, &values);
                    if let Some(target) = target {
                        let verdicts: Vec<&str> = cells
                            .iter()
                            .map(|(_, met)| match met {
                                Some(true) => "met",
                                Some(false) => "MISSED",
                                None => "–",
                            })
                            .collect();
                        text.push_str(&format!("  target {target}: {}", verdicts.join(" / ")));
                    }
                    out.push_str(text.trim_end());
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// add_contacts with the look for an existing contact before each POST,
/// against a wiremock HiEnergy that keeps what was POSTed and lists it back
/// (`HIENERGY_BENCH_ONLY=existing` runs this part alone).
mod existing_check {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const LIST: usize = 100;
    const CONCURRENCY: usize = 4;
    const LATENCY: Duration = Duration::from_millis(50);
    const CALLS: usize = 200;

    pub fn only() -> bool {
        std::env::var("HIENERGY_BENCH_ONLY").is_ok_and(|v| v == "existing")
    }

    fn command(bin: &Path, base_url: &str) -> Command {
        let mut cmd = base_command(bin, base_url);
        cmd.args(["--batch-concurrency", &CONCURRENCY.to_string()]);
        cmd
    }

    /// Median time of `n` calls of `name`, one after another.
    fn per_call(
        session: &mut Session,
        name: &str,
        n: usize,
        arguments: impl Fn(usize) -> Value,
    ) -> Duration {
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let mut line = json!({"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call",
                "params": {"name": name, "arguments": arguments(i)}})
            .to_string();
            line.push('\n');
            let started = Instant::now();
            session.send(line.as_bytes());
            let answer = session.recv();
            samples.push(started.elapsed());
            assert_ne!(answer["result"]["isError"], json!(true), "{answer}");
        }
        percentile(&samples, 50.0)
    }

    pub fn run(bin: &Path) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (mock, kept) = rt.block_on(async {
            let mock = MockServer::start().await;
            let kept = kept_fake::mount_kept(&mock, LATENCY, true).await;
            Mock::given(method("GET"))
                .and(path("/api/v1/search"))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                    "query": "Alo Yoga", "results": {"advertisers": {"data": [
                        {"id": 42, "title": "Alo Yoga", "domain": "aloyoga.com", "status": "approved"}
                    ], "total": 1}}, "meta": {"searchkick_available": true}})))
                .mount(&mock)
                .await;
            (mock, kept)
        });
        kept.set_delays(LATENCY, LATENCY);
        let requests = || {
            let (posts, gets) = kept.requests();
            posts + gets
        };
        let posts = || kept.requests().0;

        let mut session = Session::start(command(bin, &mock.uri()));
        session.initialize();
        let started = Instant::now();
        let summary = session.list_call(1, LIST, "kept", "skip");
        let wall = started.elapsed();
        session.close();
        assert_eq!(summary["created"], json!(LIST), "{summary}");
        assert_eq!(kept.len(), LIST);
        let first = requests();
        let ideal = LATENCY * (2 * LIST.div_ceil(CONCURRENCY)) as u32;

        // A new session: the duplicate guard starts empty.
        let mut session = Session::start(command(bin, &mock.uri()));
        session.initialize();
        let posts_before = posts();
        let started = Instant::now();
        let again = session.list_call(1, LIST, "kept", "skip");
        let again_wall = started.elapsed();
        session.close();
        assert_eq!(again["existing"], json!(LIST), "{again}");
        let second = requests() - first;
        let again_posts = posts() - posts_before;

        // Per-call overhead with an upstream that answers at once.
        kept.set_delays(Duration::ZERO, Duration::ZERO);
        let mut session = Session::start(command(bin, &mock.uri()));
        session.initialize();
        let search = per_call(
            &mut session,
            "search_advertisers",
            CALLS,
            |_| json!({"query": "Alo Yoga"}),
        );
        let add = per_call(
            &mut session,
            "add_contact",
            CALLS,
            |i| json!({"advertiser_id": 42, "email": format!("one{i}@example.com"), "if_exists": "add"}),
        );
        let add_checked = per_call(
            &mut session,
            "add_contact",
            CALLS,
            |i| json!({"advertiser_id": 42, "email": format!("two{i}@example.com")}),
        );
        session.close();
        let client = client_builder().build().expect("client");
        let url = format!(
            "{}/api/v1/search?q=Alo%20Yoga&types=advertisers",
            mock.uri()
        );
        // The same requests straight to the same fake, for what the server
        // adds to each.
        let post_url = format!("{}{CONTACTS_PATH}", mock.uri());
        let (direct_get, direct_post) = rt.block_on(async {
            let mut gets = Vec::with_capacity(CALLS);
            let mut posts = Vec::with_capacity(CALLS);
            for i in 0..CALLS {
                let started = Instant::now();
                let response = client.get(&url).header("X-Api-Key", KEY).send();
                response.await.expect("GET").bytes().await.expect("body");
                gets.push(started.elapsed());
                let started = Instant::now();
                direct_post(&client, &post_url, &format!("raw{i}@example.com")).await;
                posts.push(started.elapsed());
            }
            (percentile(&gets, 50.0), percentile(&posts, 50.0))
        });

        let per_contact = |n: u64| n as f64 / LIST as f64;
        let ratio = wall.as_secs_f64() / ideal.as_secs_f64();
        println!();
        println!(
            "add_contacts with the look for an existing contact (wiremock, {} ms per answer, concurrency {CONCURRENCY}, {LIST} contacts):",
            LATENCY.as_millis()
        );
        println!(
            "  new list: {:.2} requests per contact (target ≤ 2.0) {}; wall {} against ideal {} = {ratio:.2}× (target ≤ 1.2×) {}",
            per_contact(first),
            if per_contact(first) <= 2.0 {
                "ok"
            } else {
                "MISSED"
            },
            ms(wall),
            ms(ideal),
            if ratio <= 1.2 { "ok" } else { "MISSED" },
        );
        println!(
            "  same list, new session: {:.2} requests per contact (target ≤ 1.0) {}, {again_posts} POSTs (target 0) {}; wall {}",
            per_contact(second),
            if per_contact(second) <= 1.0 {
                "ok"
            } else {
                "MISSED"
            },
            if again_posts == 0 { "ok" } else { "MISSED" },
            ms(again_wall),
        );
        println!(
            "  per call, upstream answering at once (median of {CALLS}): search_advertisers {} (a direct GET {}: +{}); add_contact with if_exists add {} (a direct POST {}: +{}); add_contact with the look {} (2 requests)",
            ms(search),
            ms(direct_get),
            ms(search.saturating_sub(direct_get)),
            ms(add),
            ms(direct_post),
            ms(add.saturating_sub(direct_post)),
            ms(add_checked),
        );
    }
}

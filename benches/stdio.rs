//! `cargo bench --bench stdio`: how fast the release binary starts, how much
//! memory it holds and what it adds to a call, measured the way an MCP
//! client uses it (raw JSON-RPC lines over the child's stdin/stdout) against
//! a fake HiEnergy on 127.0.0.1. Needs nothing outside the repository.
//!
//! Options (after `--`): `--latency-ms N` upstream latency for the
//! sequential run (default 0), `--burst-latency-ms N` for the concurrent run
//! (default 100), `--calls N` (500), `--burst N` (200), `--cold N` (20),
//! `--list N` contacts in the add_contacts run (100), `--list-latency-ms N`
//! its upstream latency (50), `--bin PATH` (or HIENERGY_MCP_BIN) to
//! measure another build.
//!
//! The binary measured is the one `cargo build --release` makes, built here
//! if need be: the copy cargo builds for a bench has the dev-dependencies'
//! features (tokio "full", rmcp's client) compiled in, so it is neither the
//! size nor quite the program that users run.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "hk_bench_0123456789";
const CONTACTS_PATH: &str = "/api/v1/contacts/add";
const WARM_UP: usize = 20;

struct Options {
    latency: Duration,
    burst_latency: Duration,
    calls: usize,
    burst: usize,
    cold: usize,
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
            list: 100,
            list_latency: Duration::from_millis(50),
            bin: std::env::var_os("HIENERGY_MCP_BIN").map(PathBuf::from),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            let ms =
                |v: String| Duration::from_secs_f64(v.parse::<f64>().expect("milliseconds") / 1e3);
            match arg.as_str() {
                "--latency-ms" => options.latency = ms(value()),
                "--burst-latency-ms" => options.burst_latency = ms(value()),
                "--calls" => options.calls = value().parse().expect("--calls N"),
                "--burst" => options.burst = value().parse().expect("--burst N"),
                "--cold" => options.cold = value().parse().expect("--cold N"),
                "--list" => options.list = value().parse().expect("--list N"),
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
    let bin = options.bin.clone().unwrap_or_else(release_binary);
    let fake = Fake::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let direct = direct_client();
    let mut table = Table::default();
    eprintln!(
        "measuring {} against a fake HiEnergy on {} ...",
        bin.display(),
        fake.addr
    );

    // Cold start: spawn until the initialize answer, then close stdin and
    // time the exit of an idle server.
    let mut starts = Vec::with_capacity(options.cold);
    let mut idle_exits = Vec::with_capacity(options.cold);
    let mut fresh_rss = (0, 0, 0);
    for _ in 0..options.cold {
        let started = Instant::now();
        let mut session = Session::spawn(&bin, &fake.base_url());
        session.initialize();
        starts.push(started.elapsed());
        let pid = session.child.id();
        fresh_rss = (
            proc_status_kib(pid, "VmRSS:"),
            proc_status_kib(pid, "RssAnon:"),
            proc_status_kib(pid, "RssFile:"),
        );
        idle_exits.push(session.close());
    }
    table.section(&format!("cold start ({} spawns)", options.cold));
    table.row(
        "spawn → initialize answer, median",
        ms(percentile(&starts, 50.0)),
        "≤ 5 ms",
        percentile(&starts, 50.0) <= Duration::from_millis(5),
    );
    table.info("spawn → initialize answer, max", ms(max(&starts)));
    table.info(
        "RSS right after initialize (anon + file)",
        format!(
            "{} ({} + {})",
            mib(fresh_rss.0),
            mib(fresh_rss.1),
            mib(fresh_rss.2)
        ),
    );

    // Sequential calls, one session, a server call and a direct POST in
    // turn so that load from elsewhere on the machine hits both alike. The
    // first calls of each open a connection and are not counted.
    fake.set_latency(options.latency);
    let mut session = Session::spawn(&bin, &fake.base_url());
    session.initialize();
    let mut id = 1u64;
    let mut through_server = Vec::with_capacity(options.calls);
    let mut straight = Vec::with_capacity(options.calls);
    let before = fake.requests();
    let connections = fake.connections();
    let mut cpu_before = Duration::ZERO;
    for i in 0..WARM_UP + options.calls {
        if i == WARM_UP {
            cpu_before = cpu_time(session.child.id());
        }
        let email = format!("seq{i}@example.com");
        let started = Instant::now();
        session.call(id, &email);
        let server_time = started.elapsed();
        id += 1;
        let started = Instant::now();
        rt.block_on(direct_post(&direct, &fake.url(), &email));
        let direct_time = started.elapsed();
        if i >= WARM_UP {
            through_server.push(server_time);
            straight.push(direct_time);
        }
    }
    let cpu_per_call = (cpu_time(session.child.id()) - cpu_before) / options.calls as u32;
    let sent = fake.requests() - before;
    let opened = fake.connections() - connections;
    assert_eq!(
        sent,
        2 * (WARM_UP + options.calls) as u64,
        "every call must reach the fake"
    );
    let seq_hwm = proc_status_kib(session.child.id(), "VmHWM:");
    let overhead = percentile(&through_server, 50.0).saturating_sub(percentile(&straight, 50.0));
    table.section(&format!(
        "sequential: {} tools/call over one session, each beside the same POST sent straight to the fake",
        options.calls
    ));
    table.info(
        "emails distinct, duplicate guard on (the real path); upstream latency",
        ms(options.latency),
    );
    table.info(
        "through the server, p50 / p99",
        format!(
            "{} / {}",
            ms(percentile(&through_server, 50.0)),
            ms(percentile(&through_server, 99.0))
        ),
    );
    table.info(
        "direct POST, reused reqwest client, p50 / p99",
        format!(
            "{} / {}",
            ms(percentile(&straight, 50.0)),
            ms(percentile(&straight, 99.0))
        ),
    );
    table.row(
        "server overhead per call, p50",
        ms(overhead),
        "≤ 0.2 ms",
        overhead <= Duration::from_micros(200),
    );
    table.info(
        "server overhead per call, p99",
        ms(percentile(&through_server, 99.0).saturating_sub(percentile(&straight, 99.0))),
    );
    table.info("server CPU time per call, all threads", ms(cpu_per_call));
    table.info(
        "connections opened, server and direct client together",
        opened.to_string(),
    );

    // Concurrency: the whole burst written at once to the same session,
    // then the same number of POSTs straight to the fake. The first round
    // opens the connections; the second finds them pooled.
    fake.set_latency(options.burst_latency);
    table.section(&format!(
        "concurrency: {} tools/call written at once to the session, upstream latency {}",
        options.burst,
        ms(options.burst_latency)
    ));
    for round in ["new connections", "pooled connections"] {
        let before = fake.requests();
        let connections = fake.connections();
        let started = Instant::now();
        session.burst(
            &mut id,
            options.burst,
            round.split(' ').next().unwrap_or("r"),
        );
        let server_wall = started.elapsed();
        let opened = fake.connections() - connections;
        let started = Instant::now();
        rt.block_on(direct_burst(&direct, &fake.url(), options.burst, round));
        let direct_wall = started.elapsed();
        assert_eq!(fake.requests() - before, 2 * options.burst as u64);
        let ratio = server_wall.as_secs_f64() / direct_wall.as_secs_f64();
        if round == "new connections" {
            table.row(
                &format!("through the server, {round}"),
                format!("{} ({ratio:.2}× floor)", ms(server_wall)),
                "≤ 1.5× floor",
                ratio <= 1.5,
            );
        } else {
            table.info(
                &format!("through the server, {round}"),
                format!("{} ({ratio:.2}× floor)", ms(server_wall)),
            );
        }
        table.info(
            &format!("floor: direct concurrent POSTs, {round}"),
            ms(direct_wall),
        );
        table.info(
            &format!("connections the server opened, {round}"),
            opened.to_string(),
        );
    }

    list_vs_sequential(&bin, &fake, &options, &mut table);

    let hwm = proc_status_kib(session.child.id(), "VmHWM:");
    table.section("memory of the server process (/proc/PID/status)");
    table.row(
        "peak RSS (VmHWM) over the whole session",
        mib(hwm),
        "≤ 12 MiB",
        hwm <= 12 * 1024,
    );
    table.info("peak RSS after the sequential run", mib(seq_hwm));
    table.info(
        "RSS at the end (connections pooled): anon + file",
        format!(
            "{} + {}",
            mib(proc_status_kib(session.child.id(), "RssAnon:")),
            mib(proc_status_kib(session.child.id(), "RssFile:"))
        ),
    );
    table.info(
        "threads at the end",
        proc_status_kib(session.child.id(), "Threads:").to_string(),
    );

    let busy_exit = session.close();
    table.section("exit and size");
    table.info(
        "exit after stdin closes, idle server (median)",
        ms(percentile(&idle_exits, 50.0)),
    );
    table.info("exit after stdin closes, after the run", ms(busy_exit));
    let (built, stripped) = binary_size(&bin);
    match stripped {
        Some(stripped) => {
            table.row(
                "release binary, stripped",
                megabytes(stripped),
                "≤ 8 MB",
                stripped <= 8_000_000,
            );
            table.info("release binary as built", megabytes(built));
        }
        None => table.row(
            "release binary as built (no `strip` found)",
            megabytes(built),
            "≤ 8 MB",
            built <= 8_000_000,
        ),
    }

    println!();
    println!("hienergy-mcp stdio benchmark: {}", bin.display());
    println!("machine: {}", machine());
    println!("{}", table.render());
}

/// The same contacts added two ways, each in a session of its own so that
/// its peak memory is its own: one add_contacts call with the whole list,
/// and one add_contact call after another.
fn list_vs_sequential(bin: &Path, fake: &Fake, options: &Options, table: &mut Table) {
    let n = options.list;
    let concurrency = usize::from(hienergy_mcp::config::DEFAULT_BATCH_CONCURRENCY);
    let ideal = options.list_latency * n.div_ceil(concurrency) as u32;
    fake.set_latency(options.list_latency);
    table.section(&format!(
        "a list: {n} contacts, upstream latency {}, batch concurrency {concurrency} (default)",
        ms(options.list_latency)
    ));

    let mut session = Session::spawn(bin, &fake.base_url());
    session.initialize();
    let before = fake.requests();
    let started = Instant::now();
    session.list_call(1, n, "list");
    let wall = started.elapsed();
    let posts = fake.requests() - before;
    let hwm = proc_status_kib(session.child.id(), "VmHWM:");
    session.close();
    assert_eq!(posts, n as u64, "every contact must reach the fake once");
    let ratio = wall.as_secs_f64() / ideal.as_secs_f64();
    table.row(
        "one add_contacts call, wall time",
        format!("{} ({ratio:.2}× ideal {})", ms(wall), ms(ideal)),
        "≤ 1.2× ceil(n / concurrency) × latency",
        ratio <= 1.2,
    );
    table.info("one add_contacts call, POSTs", posts.to_string());
    table.info("one add_contacts call, peak RSS (VmHWM)", mib(hwm));

    let mut session = Session::spawn(bin, &fake.base_url());
    session.initialize();
    let before = fake.requests();
    let started = Instant::now();
    for i in 0..n {
        session.call(i as u64 + 1, &format!("one-by-one{i}@example.com"));
    }
    let seq_wall = started.elapsed();
    let seq_posts = fake.requests() - before;
    let seq_hwm = proc_status_kib(session.child.id(), "VmHWM:");
    session.close();
    table.info(
        &format!("{n} sequential add_contact calls, wall time"),
        format!(
            "{} ({:.1}× the list call)",
            ms(seq_wall),
            seq_wall.as_secs_f64() / wall.as_secs_f64()
        ),
    );
    table.info(
        &format!("{n} sequential add_contact calls, POSTs"),
        seq_posts.to_string(),
    );
    table.info(
        &format!("{n} sequential add_contact calls, peak RSS (VmHWM)"),
        mib(seq_hwm),
    );
}

/// `cargo build --release` of the server, as users build it; cargo has
/// released its lock on the target directory before running a bench.
fn release_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the release binary (cargo build --release --bin hienergy-mcp) ...");
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--release",
            "--bin",
            "hienergy-mcp",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo");
    assert!(output.status.success(), "cargo build --release failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "hienergy-mcp")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo named no hienergy-mcp executable")
}

// --- the server over stdio -------------------------------------------------

/// The server, spawned as an MCP client spawns it, spoken to in raw
/// JSON-RPC lines. Logs are turned down and discarded so that stderr
/// writes are not what gets measured.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Session {
    fn spawn(bin: &Path, base_url: &str) -> Self {
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
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
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

    fn call(&mut self, id: u64, email: &str) {
        self.send(call_line(id, email).as_bytes());
        check_answer(&self.recv());
    }

    /// One add_contacts call with `n` distinct contacts; every one must
    /// come back created.
    fn list_call(&mut self, id: u64, n: usize, tag: &str) {
        let contacts: Vec<Value> = (0..n)
            .map(|i| json!({"advertiser_id": 42, "email": format!("{tag}{i}@example.com"), "name": "Bench User"}))
            .collect();
        let mut line = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "add_contacts",
            "arguments": {"contacts": contacts}
        }})
        .to_string();
        line.push('\n');
        self.send(line.as_bytes());
        let answer = self.recv();
        let summary = &answer["result"]["structuredContent"]["summary"];
        assert_eq!(summary["created"], json!(n), "{answer}");
    }

    /// Writes `n` calls in one go (from another thread, so that neither
    /// side can block on a full pipe) and reads until every answer is in.
    fn burst(&mut self, id: &mut u64, n: usize, tag: &str) {
        let mut lines = String::new();
        for i in 0..n {
            lines.push_str(&call_line(*id, &format!("burst-{tag}{i}@example.com")));
            *id += 1;
        }
        let stdin = self.stdin.as_mut().expect("stdin open");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                stdin.write_all(lines.as_bytes()).expect("write stdin");
                stdin.flush().expect("flush stdin");
            });
            for _ in 0..n {
                self.line.clear();
                let read = self.stdout.read_line(&mut self.line).expect("read stdout");
                assert!(read > 0, "the server closed stdout");
                let answer: Value = serde_json::from_str(&self.line).expect("JSON");
                check_answer(&answer);
            }
        });
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

fn call_line(id: u64, email: &str) -> String {
    let mut line = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "add_contact",
        "arguments": {"advertiser_id": 42, "email": email, "name": "Bench User"}
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

/// Configured like the server's own client, so that the difference is the
/// server and nothing else.
fn direct_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("client")
}

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

// --- the fake HiEnergy -----------------------------------------------------

/// HTTP/1.1 with keep-alive on its own thread, answering every POST with
/// 201 and a created contact after the configured latency.
struct Fake {
    addr: SocketAddr,
    latency_us: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

impl Fake {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let latency_us = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (latency, count, accepted) =
            (latency_us.clone(), requests.clone(), connections.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(stream, latency.clone(), count.clone()));
                }
            });
        });
        Self {
            addr,
            latency_us,
            requests,
            connections,
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn url(&self) -> String {
        format!("http://{}{CONTACTS_PATH}", self.addr)
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
        let contact = &request["contact"];
        let body = json!({"data": {
            "id": id,
            "advertiser_id": contact["advertiser_id"],
            "email": contact["email"],
            "name": contact["name"],
            "status": "active",
            "created_at": "2025-01-01T00:00:00Z"
        }})
        .to_string();
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

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

enum Row {
    Section(String),
    Figure {
        what: String,
        value: String,
        target: Option<(String, bool)>,
    },
}

impl Table {
    fn section(&mut self, title: &str) {
        self.rows.push(Row::Section(title.to_owned()));
    }

    fn row(&mut self, what: &str, value: String, target: &str, met: bool) {
        self.rows.push(Row::Figure {
            what: what.to_owned(),
            value,
            target: Some((target.to_owned(), met)),
        });
    }

    fn info(&mut self, what: &str, value: String) {
        self.rows.push(Row::Figure {
            what: what.to_owned(),
            value,
            target: None,
        });
    }

    fn render(&self) -> String {
        let width = |f: fn(&Row) -> usize| self.rows.iter().map(f).max().unwrap_or(0);
        let w_what = width(|r| match r {
            Row::Figure { what, .. } => what.chars().count(),
            Row::Section(_) => 0,
        });
        let w_value = width(|r| match r {
            Row::Figure { value, .. } => value.chars().count(),
            Row::Section(_) => 0,
        });
        let mut out = String::new();
        for row in &self.rows {
            match row {
                Row::Section(title) => out.push_str(&format!("\n{title}\n")),
                Row::Figure {
                    what,
                    value,
                    target,
                } => {
                    let target = target.as_ref().map_or(String::new(), |(t, met)| {
                        format!("  target {t}: {}", if *met { "met" } else { "MISSED" })
                    });
                    out.push_str(&format!("  {what:<w_what$}  {value:>w_value$}{target}\n"));
                }
            }
        }
        out
    }
}

//! Test support: a private `redis-server` on a free loopback port, started with no
//! persistence, stopped by PID when dropped (modelled on redis-rs's `tests/support`).
//! The binary comes from `REDIS_SERVER_BIN` or PATH; when it is missing the test FAILS with
//! an install hint (it never skips).
#![allow(dead_code)]

pub mod cluster;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Default)]
pub struct ServerOptions {
    /// `requirepass` (default user).
    pub password: Option<String>,
    /// An ACL user `(name, password)` with full rights; the default user is then disabled.
    pub acl_user: Option<(String, String)>,
    /// Serve TLS only, with a CA and a server certificate for 127.0.0.1 made for this server.
    pub tls: bool,
    /// Extra `--flag value` arguments.
    pub args: Vec<String>,
}

pub struct RedisServer {
    pub port: u16,
    pub dir: PathBuf,
    opts: ServerOptions,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn binary() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_string())
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(opts: ServerOptions) -> Self {
        let port = free_port();
        let mut s = Self::prepare(port, opts);
        s.spawn();
        s
    }

    /// A server object for a free port, NOT started (for "down at start" tests).
    pub fn not_started() -> Self {
        Self::prepare(free_port(), ServerOptions::default())
    }

    fn prepare(port: u16, opts: ServerOptions) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "agent-core-redis-{}-{}-{}",
            std::process::id(),
            port,
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's temp dir");
        let s = RedisServer {
            port,
            dir,
            opts,
            child: None,
        };
        if s.opts.tls {
            s.make_certs();
        }
        s
    }

    pub fn url(&self) -> String {
        let scheme = if self.opts.tls { "rediss" } else { "redis" };
        match (&self.opts.acl_user, &self.opts.password) {
            (Some((u, p)), _) => format!("{scheme}://{u}:{p}@127.0.0.1:{}/0", self.port),
            (None, Some(p)) => format!("{scheme}://:{p}@127.0.0.1:{}/0", self.port),
            (None, None) => format!("{scheme}://127.0.0.1:{}/0", self.port),
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// Starts (or restarts) the server on its port and waits until it accepts connections.
    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.log_file());
        let mut args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--daemonize".into(),
            "no".into(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--logfile".into(),
            self.log_file().display().to_string(),
        ];
        if self.opts.tls {
            args.extend(
                [
                    "--port",
                    "0",
                    "--tls-port",
                    &self.port.to_string(),
                    "--tls-cert-file",
                    &self.dir.join("server.crt").display().to_string(),
                    "--tls-key-file",
                    &self.dir.join("server.key").display().to_string(),
                    "--tls-ca-cert-file",
                    &self.ca_file().display().to_string(),
                    "--tls-auth-clients",
                    "no",
                ]
                .map(String::from),
            );
        } else {
            args.extend(["--port".to_string(), self.port.to_string()]);
        }
        if let Some(p) = &self.opts.password {
            args.extend(["--requirepass".to_string(), p.clone()]);
        }
        if let Some((u, p)) = &self.opts.acl_user {
            // ACL users go in a config file (the command line cannot carry spaces in them).
            let conf = self.dir.join("acl.conf");
            std::fs::write(
                &conf,
                format!("user {u} on >{p} ~* &* +@all\nuser default off\n"),
            )
            .expect("write acl.conf");
            args.insert(0, conf.display().to_string());
        }
        args.extend(self.opts.args.iter().cloned());
        let child = Command::new(binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{}` ({e}). These tests need redis-server (>= 6): install it \
                     (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) \
                     or point REDIS_SERVER_BIN at the binary.",
                    binary()
                )
            });
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
            if log.contains("Ready to accept connections") {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("redis-server exited early ({status}); log:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server not ready after 10 s; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: &str) -> bool {
        let Some(pid) = self.pid() else { return false };
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freeze (SIGSTOP) / thaw (SIGCONT).
    pub fn freeze(&self) {
        assert!(self.signal("-STOP"), "kill -STOP failed");
    }

    pub fn thaw(&self) {
        assert!(self.signal("-CONT"), "kill -CONT failed");
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends one command over a plain TCP connection (authenticating first when needed)
    /// and returns the raw RESP reply. For checks the tier under test must not influence.
    pub fn raw(&self, args: &[&[u8]]) -> Vec<u8> {
        assert!(!self.opts.tls, "raw() speaks plain TCP");
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect for raw command");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut req = Vec::new();
        let mut push = |parts: &[&[u8]]| {
            req.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
            for p in parts {
                req.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
                req.extend_from_slice(p);
                req.extend_from_slice(b"\r\n");
            }
        };
        let mut expect_auth = false;
        if let Some((u, p)) = &self.opts.acl_user {
            push(&[b"AUTH", u.as_bytes(), p.as_bytes()]);
            expect_auth = true;
        } else if let Some(p) = &self.opts.password {
            push(&[b"AUTH", p.as_bytes()]);
            expect_auth = true;
        }
        push(args);
        s.write_all(&req).expect("write raw command");
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = s.read(&mut buf).unwrap_or(0);
            out.extend_from_slice(&buf[..n]);
            let body = if expect_auth {
                match out.windows(2).position(|w| w == b"\r\n") {
                    Some(i) => &out[i + 2..],
                    None => &out[..0],
                }
            } else {
                &out[..]
            };
            if resp_complete(body) || n == 0 || Instant::now() > deadline {
                let body = body.to_vec();
                quit(&mut s, deadline);
                return body;
            }
        }
    }

    /// A raw reply as text.
    pub fn raw_str(&self, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        String::from_utf8_lossy(&self.raw(&a)).into_owned()
    }

    /// `calls=` of one command in `INFO commandstats` (0 when never called).
    pub fn command_calls(&self, cmd: &str) -> u64 {
        let info = self.raw_str(&["INFO", "commandstats"]);
        let tag = format!("cmdstat_{cmd}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&tag))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// A raw command whose reply is an integer (`:n`).
    pub fn raw_int(&self, args: &[&str]) -> i64 {
        let reply = self.raw_str(args);
        reply
            .trim_start_matches(':')
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{args:?} answered {reply:?}, not an integer"))
    }

    /// Waits (up to 2 s, else panics) until no client is connected.
    pub async fn until_no_clients(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.clients() > 0 {
            assert!(Instant::now() < deadline, "a connection is still open");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Number of client connections (this raw one excluded).
    pub fn clients(&self) -> u64 {
        let info = self.raw_str(&["INFO", "clients"]);
        let n: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        n.saturating_sub(1)
    }

    fn make_certs(&self) {
        let d = &self.dir;
        let run = |args: &[&str]| {
            let ok = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                ok,
                "openssl {args:?} failed (the TLS test needs the openssl CLI)"
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=agent-core test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext.cnf");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "ext.cnf",
        ]);
    }
}

/// Ends a raw connection with `QUIT` and waits until the server has closed it: a connection
/// merely dropped on our side may still be counted by the next `INFO clients`.
fn quit(s: &mut TcpStream, deadline: Instant) {
    if s.write_all(b"*1\r\n$4\r\nQUIT\r\n").is_err() {
        return;
    }
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Whether `b` holds one complete RESP reply (enough for the replies these tests read).
fn resp_complete(b: &[u8]) -> bool {
    fn line_end(b: &[u8], from: usize) -> Option<usize> {
        b.get(from..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| from + i)
    }
    fn parse(b: &[u8], at: usize) -> Option<usize> {
        let t = *b.get(at)?;
        let e = line_end(b, at)?;
        let head = std::str::from_utf8(&b[at + 1..e]).ok()?;
        match t {
            b'+' | b'-' | b':' => Some(e + 2),
            b'$' => {
                let n: i64 = head.parse().ok()?;
                if n < 0 {
                    return Some(e + 2);
                }
                let end = e + 2 + n as usize + 2;
                (b.len() >= end).then_some(end)
            }
            b'*' => {
                let n: i64 = head.parse().ok()?;
                let mut p = e + 2;
                for _ in 0..n.max(0) {
                    p = parse(b, p)?;
                }
                Some(p)
            }
            _ => None,
        }
    }
    parse(b, 0).is_some()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

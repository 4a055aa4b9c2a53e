//! Running the `ztick` binary as real processes under a deadline, for the CLI tests.

use std::ffi::OsStr;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use ztick::{Endpoint, Transport};

use super::unbound;

pub const ZTICK: &str = env!("CARGO_BIN_EXE_ztick");

/// Passed as `--timeout-ms` to every child that talks to a peer: the binary gives up by
/// itself well before [`DEADLINE`] kills it.
pub const TIMEOUT_MS: &str = "20000";

/// Wall-clock limit on one child (or one pair), after which it is killed.
pub const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Shared helpers: processes under a deadline, endpoints, output parsing.
// ---------------------------------------------------------------------------------------

/// A running `ztick` whose stdout and stderr are drained by threads (so a chatty child can
/// never block on a full pipe), killed on drop if still running.
pub struct Proc {
    pub line: String,
    pub child: Child,
    pub stdout: Option<JoinHandle<String>>,
    pub stderr: Option<JoinHandle<String>>,
    pub status: Option<ExitStatus>,
    /// Each stderr line as it comes, for [`Proc::wait_line`].
    pub lines: crossbeam_channel::Receiver<String>,
}

/// A child that has exited (by itself, or `killed` by the harness).
#[derive(Debug)]
pub struct Finished {
    pub line: String,
    pub status: ExitStatus,
    pub killed: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn drain<R: Read + Send + 'static>(mut pipe: R) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// As [`drain`], also passing each line to `lines` as it arrives.
fn drain_lines<R: Read + Send + 'static>(
    pipe: R,
    lines: crossbeam_channel::Sender<String>,
) -> JoinHandle<String> {
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            all.push_str(&line);
            all.push('\n');
            let _ = lines.try_send(line);
        }
        all
    })
}

impl Proc {
    pub fn spawn<S: AsRef<OsStr>>(args: &[S]) -> Proc {
        Proc::spawn_under(&[], args)
    }

    /// Runs the built `ztick` under `wrapper` (e.g. `ip netns exec NAME`), with `args`.
    pub fn spawn_under<S: AsRef<OsStr>>(wrapper: &[&str], args: &[S]) -> Proc {
        let line = wrapper
            .iter()
            .map(|w| (*w).to_owned())
            .chain(std::iter::once("ztick".to_owned()))
            .chain(args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(ZTICK);
                c
            }
            None => Command::new(ZTICK),
        };
        let child = cmd
            .args(args)
            // The binary logs at `warn` unless told otherwise; keep it that way here.
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning `{line}`: {e}"));
        Proc::adopt(line, child)
    }

    /// Watches a child spawned with piped stdout and stderr: drains both, and passes each
    /// stderr line to [`Proc::wait_line`].
    pub fn adopt(line: String, mut child: Child) -> Proc {
        let (tx, lines) = crossbeam_channel::bounded(1024);
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(|p| drain_lines(p, tx));
        Proc { line, child, stdout, stderr, status: None, lines }
    }

    /// Waits at most `limit` for a stderr line containing `needle`: a handshake with what
    /// the child says it has done. False when the child exited or the time passed first.
    pub fn wait_line(&self, needle: &str, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// The names of the child's threads now (Linux: `/proc/PID/task/*/comm`).
    pub fn thread_names(&self) -> Vec<String> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return Vec::new();
        };
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim_end().to_owned())
            .collect()
    }

    /// The exit status if the child has exited, without blocking.
    pub fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.child.try_wait() {
                Ok(status) => self.status = status,
                Err(e) => panic!("waiting for `{}`: {e}", self.line),
            }
        }
        self.status
    }

    pub fn kill(&mut self) {
        if self.poll().is_none() {
            let _ = self.child.kill();
            match self.child.wait() {
                Ok(status) => self.status = Some(status),
                Err(e) => panic!("reaping `{}` after killing it: {e}", self.line),
            }
        }
    }

    /// Collects the output of an exited child.
    pub fn finished(mut self, killed: bool) -> Finished {
        let status = self.status.expect("collect only exited children");
        let join =
            |h: Option<JoinHandle<String>>| h.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        Finished {
            line: std::mem::take(&mut self.line),
            status,
            killed,
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until every child has exited, or one has failed (the others are then killed: a
/// pair cannot finish without both ends), or `limit` has passed (all are killed and the
/// test fails with their stderr). Results are in the order given.
pub fn wait_group(mut procs: Vec<Proc>, limit: Duration) -> Vec<Finished> {
    let deadline = Instant::now() + limit;
    loop {
        let statuses: Vec<Option<ExitStatus>> = procs.iter_mut().map(Proc::poll).collect();
        let failed = statuses.iter().any(|s| matches!(s, Some(s) if !s.success()));
        if statuses.iter().all(Option::is_some) || failed {
            let mut killed = Vec::new();
            for p in &mut procs {
                killed.push(p.poll().is_none());
                p.kill();
            }
            return procs.into_iter().zip(killed).map(|(p, k)| p.finished(k)).collect();
        }
        if Instant::now() >= deadline {
            for p in &mut procs {
                p.kill();
            }
            let report: String = procs
                .into_iter()
                .map(|p| p.finished(true))
                .map(|f| format!("\n--- `{}`\nstdout:\n{}\nstderr:\n{}", f.line, f.stdout, f.stderr))
                .collect();
            panic!("still running after {limit:?}, killed:{report}");
        }
        // Polling for exit, not synchronising: the children do not depend on this delay.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs one `ztick` to completion under `limit`.
pub fn run_for<S: AsRef<OsStr>>(args: &[S], limit: Duration) -> Finished {
    wait_group(vec![Proc::spawn(args)], limit).pop().expect("one result")
}

pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Finished {
    run_for(args, DEADLINE)
}

/// A command line split on whitespace (none of ours quotes anything).
pub fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

pub fn describe(f: &Finished) -> String {
    format!(
        "`{}` {}{}\nstdout:\n{}\nstderr:\n{}",
        f.line,
        f.status,
        if f.killed { " (killed by the test)" } else { "" },
        f.stdout,
        f.stderr
    )
}

pub fn expect_success(f: &Finished) {
    assert!(f.status.success(), "expected success: {}", describe(f));
}

/// Asserts a non-zero exit whose stderr carries a line with every one of `needles`
/// (case-insensitive), and nothing on stdout.
pub fn expect_failure_mentioning(f: &Finished, needles: &[&str]) {
    assert!(!f.status.success() && !f.killed, "expected a clean failure: {}", describe(f));
    let useful = f.stderr.lines().any(|line| {
        let line = line.to_lowercase();
        needles.iter().all(|n| line.contains(&n.to_lowercase()))
    });
    assert!(useful, "no stderr line mentions all of {needles:?}: {}", describe(f));
    assert!(f.stdout.trim().is_empty(), "a failure printed results: {}", describe(f));
}

pub fn next_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// An endpoint for a two-process test (`tcp` or `ipc`, on loopback); an ipc socket file is
/// removed on drop.
pub struct TestEndpoint {
    pub url: String,
    endpoint: Endpoint,
}

impl TestEndpoint {
    pub fn new(transport: &str) -> TestEndpoint {
        let t = match transport {
            "tcp" => Transport::Tcp,
            "ipc" => Transport::Ipc,
            other => panic!("no two-process endpoint for {other}"),
        };
        let endpoint = unbound(t, "ztick-perf-tools");
        // A file an earlier process with the same pid may have left.
        endpoint.remove_ipc_file();
        TestEndpoint { url: endpoint.to_string(), endpoint }
    }
}

impl Drop for TestEndpoint {
    fn drop(&mut self) {
        self.endpoint.remove_ipc_file();
    }
}

/// A fresh directory under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("ztick-perf-tools-{}-{}", std::process::id(), next_id()));
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn json(f: &Finished) -> Value {
    let mut lines = f.stdout.lines();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        panic!("--json printed other than one line: {}", describe(f));
    };
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {}", describe(f)))
}

/// `ztick fanout --role pub` bound at `feed` with its side channel at `side`, waiting for
/// `subscribers`, printing JSON; `extra` flags after those.
pub fn fanout_publisher(feed: &str, side: &str, subscribers: usize, extra: &[&str]) -> Proc {
    let n = subscribers.to_string();
    let mut args = vec![
        "fanout",
        "--role",
        "pub",
        "--bind",
        feed,
        "--snapshot-bind",
        side,
        "--subscribers",
        &n,
        "--json",
    ];
    args.extend_from_slice(extra);
    Proc::spawn(&args)
}

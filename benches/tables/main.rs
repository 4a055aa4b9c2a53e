//! `ztick-tables`: every benchmark table of this repository, rendered from the JSON the
//! tools emit. The scripts orchestrate the runs and call it (the built binary,
//! `target/release/ztick-tables`):
//!
//! | subcommand | called by | does |
//! |---|---|---|
//! | `bench-meta` | scripts/bench.sh | writes the run's `meta.json` (machine, date, commands) |
//! | `bench` | scripts/bench.sh | criterion + the suites' HDR lines -> BENCHMARKS.md section 9 |
//! | `splice` | scripts/bench.sh | puts the section between BENCHMARKS.md's markers |
//! | `libzmq-meta` | scripts/compare-libzmq.sh | writes the pass's `meta.json` |
//! | `libzmq` | scripts/compare-libzmq.sh | its `results.jsonl` -> ztick against libzmq from C |
//! | `builds` | scripts/compare-builds.sh | the same commands on two builds, side by side |
//! | `zmqrs-record` | scripts/compare-zmqrs.sh | one fan-out run's record -> a `results.jsonl` line |
//! | `midpoint` | scripts/compare-zmqrs.sh | the next rate of the `--max-rate` bisection |
//! | `zmqrs` | scripts/compare-zmqrs.sh | its `results.jsonl` -> ztick against zmq.rs |
//! | `experiments` | scripts/fanout-experiments.sh | its runs -> the medians per variant |
//! | `repair` | scripts/fanout-repair.sh | its runs -> what repair costs and recovers |
//! | `run` | scripts/fair-fanout.sh | one fair fan-out run: starts, times and reaps its processes -> a `FairRun` line |
//! | `fair` | scripts/fair-fanout.sh | its `results.jsonl` -> every stack side by side, per cell |
//! | `idle` | scripts/fair-fanout.sh --idle | the same file's idle runs -> latency after idle gaps |
//!
//! The records are read through the types their emitters write them with: the `ztick`
//! command's (src/bin/ztick/schema.rs), the bench suites' (benches/common/record.rs), the
//! zmq.rs peer's (peers/zmqrs-fanout/src/report.rs), each compiled here with `#[path]`; the
//! C programs print the `ztick` command's latency and throughput records. One median, one
//! ratio ([`stats`]) and one way to write each unit ([`units`]) serve every table.
//!
//! A bench-side tool (feature `cli`), not part of the library.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The records are compiled whole; each table reads the fields it shows.
#[allow(dead_code)]
#[path = "../../src/bin/ztick/schema.rs"]
mod schema;

#[allow(dead_code)]
#[path = "../common/record.rs"]
mod record;

#[allow(dead_code)]
#[path = "../../peers/zmqrs-fanout/src/report.rs"]
mod zmqrs_report;

mod bench;
mod builds;
mod experiments;
mod fair;
mod host;
mod jsonl;
mod libzmq;
mod repair;
mod run;
mod stats;
mod units;
mod zmqrs;

/// Renders ztick's benchmark tables from the JSON its tools emit.
#[derive(Parser, Debug)]
#[command(name = "ztick-tables", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// BENCHMARKS.md section 9 from one scripts/bench.sh run, on stdout.
    Bench {
        /// criterion's output directory.
        #[arg(long, default_value = "target/criterion")]
        criterion: PathBuf,
        /// The directory of the suites' HDR lines (*.jsonl).
        #[arg(long, default_value = "target/ztick-bench")]
        hdr: PathBuf,
        /// Count only criterion results written at or after this Unix time (seconds).
        #[arg(long, default_value_t = 0.0)]
        since: f64,
        /// The run's meta.json (from bench-meta).
        #[arg(long)]
        meta: Option<PathBuf>,
        /// compare-libzmq.sh's table, to include; a missing file says the comparison failed.
        #[arg(long)]
        compare: Option<PathBuf>,
    },
    /// Writes bench.sh's meta.json: this machine, now, and the commands of the run.
    BenchMeta {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// The run is a --quick one.
        #[arg(long)]
        quick: bool,
        /// The 1 and 5 minute load averages at the start, e.g. "0.12 0.30".
        #[arg(long, default_value = "")]
        load: String,
        /// The commands the run executes, in order.
        commands: Vec<String>,
    },
    /// Replaces what lies between BENCHMARKS.md's bench.sh markers with SECTION (or appends
    /// the markers and SECTION).
    Splice {
        /// The Markdown file to edit in place.
        file: PathBuf,
        /// The generated section.
        section: PathBuf,
    },
    /// compare-libzmq.sh's tables from its results.jsonl, on stdout.
    Libzmq {
        /// The runs, one JSON line each.
        results: PathBuf,
        /// The pass's settings (from libzmq-meta), printed above the tables.
        #[arg(long)]
        meta: Option<PathBuf>,
    },
    /// compare-builds.sh's tables from its results.jsonl, on stdout.
    Builds {
        /// The runs, one JSON line each.
        results: PathBuf,
    },
    /// Writes compare-libzmq.sh's meta.json (the date and host are taken here).
    LibzmqMeta {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Rounds per cell.
        #[arg(long)]
        rounds: u64,
        /// Timed round trips per latency run.
        #[arg(long)]
        round_trips: u64,
        /// Messages per throughput run, as a sentence.
        #[arg(long)]
        thr_count: String,
        /// The vendored libzmq's version and build.
        #[arg(long)]
        c_vendored: String,
        /// Debian's libzmq's version.
        #[arg(long)]
        c_debian: String,
        /// The ztick commit, or "not run".
        #[arg(long)]
        ztick: String,
        /// The CPUs the programs were pinned to.
        #[arg(long)]
        pinned: Option<String>,
    },
    /// compare-zmqrs.sh's tables from its results.jsonl, on stdout.
    Zmqrs {
        /// The runs, one JSON line each.
        results: PathBuf,
    },
    /// One line of compare-zmqrs.sh's results.jsonl on stdout, from the program's JSON
    /// record on stdin (or --error); a summary on stderr.
    ZmqrsRecord {
        /// zmq.rs or ztick.
        #[arg(long)]
        stack: String,
        /// lat or max.
        #[arg(long)]
        bench: String,
        /// ipc or tcp.
        #[arg(long)]
        transport: String,
        /// Subscribers.
        #[arg(long)]
        subscribers: u64,
        /// The round, or the search step.
        #[arg(long)]
        round: u64,
        /// The rate asked, ticks per second.
        #[arg(long)]
        rate: u64,
        /// max runs: the step also fails when the worst corrected p99 exceeds this many µs
        /// (0: no bound).
        #[arg(long, default_value_t = 0.0)]
        p99_bound_us: f64,
        /// The run failed for this reason: record that instead of reading stdin.
        #[arg(long)]
        error: Option<String>,
    },
    /// The next rate between a passing LO and a failing HI: the geometric mean, rounded to a
    /// thousand, above LO.
    Midpoint {
        /// The highest rate that passed.
        lo: u64,
        /// The lowest rate that failed.
        hi: u64,
    },
    /// fanout-experiments.sh's table from its runs (one JSON line each), on stdout.
    Experiments {
        /// The runs.
        runs: PathBuf,
    },
    /// scripts/fanout-repair.sh's runs (the same lines) -> repair's cost and yield.
    Repair {
        /// The runs.
        runs: PathBuf,
    },
    /// One run of scripts/fair-fanout.sh: its processes started, bounded, reaped with their
    /// rusage; one FairRun JSON line on stdout.
    Run(RunArgs),
    /// scripts/fair-fanout.sh's tables from its results.jsonl, on stdout.
    Fair {
        /// The runs, one FairRun line each.
        results: PathBuf,
    },
    /// scripts/fair-fanout.sh --idle's table from its results.jsonl, on stdout.
    Idle {
        /// The runs, one FairRun line each.
        results: PathBuf,
    },
}

/// The flags of `ztick-tables run`.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// ztick-in, ztick-x, c-x, c-coalesced-x, zmqrs-x or zmqrs-in.
    #[arg(long)]
    stack: String,
    /// A strategy label: the run is tabled as `STACK@LABEL`.
    #[arg(long)]
    label: Option<String>,
    /// ipc or tcp.
    #[arg(long)]
    transport: String,
    /// Subscribers.
    #[arg(long)]
    subscribers: u64,
    /// The round, from 1.
    #[arg(long, default_value_t = 1)]
    round: u64,
    /// Ticks per second.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Payload bytes per tick.
    #[arg(long, default_value_t = 64)]
    size: u64,
    /// Topics.
    #[arg(long, default_value_t = 8)]
    topics: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Idle feed instead of the paced one: gaps in microseconds, comma-separated.
    #[arg(long, value_delimiter = ',')]
    idle_gaps_us: Vec<u64>,
    /// Ticks after each idle gap.
    #[arg(long, default_value_t = 20)]
    idle_samples: u64,
    /// Coalescing window of c-coalesced-x, in microseconds.
    #[arg(long, default_value_t = 20)]
    coalesce_us: u64,
    /// Kill every process still running this many seconds after the start.
    #[arg(long, default_value_t = 60.0)]
    timeout_s: f64,
    /// The ztick binary.
    #[arg(long, default_value = "target/release/ztick")]
    ztick: PathBuf,
    /// The zmqrs-fanout binary.
    #[arg(long, default_value = "peers/zmqrs-fanout/target/release/zmqrs-fanout")]
    zmqrs: PathBuf,
    /// The directory of fanout_pub and fanout_sub.
    #[arg(long, default_value = "scripts/c/build/vendored")]
    c_dir: PathBuf,
    /// Extra flags for the publisher or the in-process run, split on whitespace.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub_args: String,
    /// Extra flags for every subscriber process, split on whitespace.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    sub_args: String,
    /// Where the processes' output goes (one directory per run; kept for inspection).
    #[arg(long)]
    work_dir: PathBuf,
}

/// Writes `value` as pretty JSON to `path`.
fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| format!("cannot encode {}: {e}", path.display()))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Bench { criterion, hdr, since, meta, compare } => {
            print!("{}", bench::run(&criterion, &hdr, since, meta.as_deref(), compare.as_deref())?);
        }
        Command::BenchMeta { out, quick, load, commands } => {
            write_json(&out, &bench::BenchMeta::collect(quick, load, commands))?;
        }
        Command::Splice { file, section } => {
            let md = jsonl::read_text(&file)?;
            let spliced = bench::splice(&md, &jsonl::read_text(&section)?)?;
            std::fs::write(&file, spliced).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        }
        Command::Libzmq { results, meta } => print!("{}", libzmq::run(&results, meta.as_deref())?),
        Command::Builds { results } => print!("{}", builds::run(&results)?),
        Command::LibzmqMeta { out, rounds, round_trips, thr_count, c_vendored, c_debian, ztick, pinned } => {
            let meta = libzmq::LibzmqMeta {
                date: libzmq::now(),
                host: libzmq::host(),
                rounds,
                round_trips,
                thr_count,
                c_vendored,
                c_debian,
                ztick,
                pinned,
            };
            write_json(&out, &meta)?;
        }
        Command::Zmqrs { results } => print!("{}", zmqrs::run(&results)?),
        Command::ZmqrsRecord { stack, bench, transport, subscribers, round, rate, p99_bound_us, error } => {
            let line = zmqrs::ZmqrsLine {
                stack,
                bench,
                transport,
                subscribers,
                round,
                rate,
                pass: false,
                result: None,
                p99_bound_us: None,
                error: None,
            };
            let line = match error {
                Some(why) => zmqrs::ZmqrsLine { error: Some(why), ..line },
                None => {
                    let mut input = String::new();
                    std::io::stdin()
                        .read_to_string(&mut input)
                        .map_err(|e| format!("cannot read stdin: {e}"))?;
                    let (line, note) = zmqrs::record(line, &input, p99_bound_us);
                    eprintln!("{note}");
                    line
                }
            };
            println!("{}", schema::to_line(&line));
        }
        Command::Midpoint { lo, hi } => println!("{}", stats::geometric_midpoint(lo, hi)),
        Command::Experiments { runs } => print!("{}", experiments::run(&runs)?),
        Command::Repair { runs } => print!("{}", repair::run(&runs)?),
        Command::Run(a) => {
            let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
            let spec = run::RunSpec {
                stack: a.stack,
                label: a.label.filter(|l| !l.is_empty()),
                transport: a.transport,
                subscribers: a.subscribers,
                round: a.round,
                rate: a.rate,
                size: a.size,
                topics: a.topics,
                duration_s: a.duration,
                idle_gaps_us: a.idle_gaps_us,
                idle_samples: a.idle_samples,
                coalesce_us: a.coalesce_us,
                timeout_s: a.timeout_s,
                ztick: a.ztick,
                zmqrs: a.zmqrs,
                c_dir: a.c_dir,
                pub_args: words(&a.pub_args),
                sub_args: words(&a.sub_args),
                work_dir: a.work_dir,
            };
            let record = run::run(&spec);
            println!("{}", schema::to_line(&record));
        }
        Command::Fair { results } => print!("{}", fair::run(&results)?),
        Command::Idle { results } => print!("{}", fair::run_idle(&results)?),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ztick-tables: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;

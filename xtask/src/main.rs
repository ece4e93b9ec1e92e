//! The project's own commands, run as `cargo xtask COMMAND` (the alias is in
//! `.cargo/config.toml`):
//!
//! - `cargo xtask test [ARGS]` finds or installs what the tests need, then runs
//!   `cargo test --workspace ARGS` with environment variables that say where
//!   it is (`AUFTRAG_TEST_VENV`, `AUFTRAG_TEST_PG_BIN`,
//!   `AUFTRAG_TEST_CHROMIUM`, `AUFTRAG_TEST_CHROMEDRIVER`; `testkit` reads
//!   them).
//! - `cargo xtask lint` runs CI's lint steps.
//! - `cargo xtask env` does the set-up of `test` and prints the variables as
//!   `export` lines, for running a test binary by hand afterwards.
//! - `cargo xtask rebuild-times` measures the edit–rebuild loop: after one
//!   warm `cargo build --release`, it touches each `definitions/*.xml` in
//!   turn and times the `cargo build --release` that follows (BENCHMARKS.md).
//!
//! CI (`.ci/run`) is `cargo xtask lint && cargo xtask test`.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask test [ARGS for cargo test]   set up what the tests need, then cargo test --workspace ARGS
                                                 (without --workspace when ARGS pick packages with -p)
       cargo xtask lint                          CI's lint steps (fmt, clippy; also of bench/)
       cargo xtask env                           the set-up of `test`, then the variables as export lines
       cargo xtask rebuild-times                 time cargo build --release after touching each definitions/*.xml";

/// The executables the venv must hold (from `xtask/requirements.txt`).
const PYTHON_TOOLS: &[&str] = &["secantusd-py", "aiosmtpd", "schemathesis"];

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let command = args.next();
    let rest: Vec<OsString> = args.collect();
    let paths = Paths::new();
    let result = match command.as_ref().and_then(|c| c.to_str()) {
        Some("test") => test(&paths, &rest),
        Some("lint") if rest.is_empty() => lint(&paths),
        Some("rebuild-times") if rest.is_empty() => rebuild_times(&paths),
        Some("env") if rest.is_empty() => setup(&paths).map(|tools| {
            for (var, value) in tools.exports() {
                println!("export {var}={}", shell_quote(&value));
            }
        }),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

struct Paths {
    root: PathBuf,
    target: PathBuf,
}

impl Paths {
    fn new() -> Paths {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask/ lies in the workspace")
            .to_owned();
        let target = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Paths { root, target }
    }

    /// A path as the user would type it from the workspace root.
    fn show<'a>(&self, path: &'a Path) -> std::path::Display<'a> {
        path.strip_prefix(&self.root).unwrap_or(path).display()
    }
}

fn say(message: impl AsRef<str>) {
    eprintln!("xtask: {}", message.as_ref());
}

fn cargo(paths: &Paths) -> Command {
    let mut c = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(&paths.root);
    // What `cargo run` set for this program is not for the builds it starts:
    // ring's build script watches CARGO_MANIFEST_DIR, so with xtask's value
    // ring and every crate above it (rustls, …) were rebuilt, and again by
    // the next plain `cargo build`.
    for (var, _) in env::vars_os() {
        let var = var.to_string_lossy();
        if var == "CARGO_MANIFEST_DIR"
            || var == "CARGO_MANIFEST_PATH"
            || var == "CARGO_CRATE_NAME"
            || var == "CARGO_BIN_NAME"
            || var == "CARGO_PRIMARY_PACKAGE"
            || var.starts_with("CARGO_PKG_")
        {
            c.env_remove(&*var);
        }
    }
    c
}

fn command_line(c: &Command) -> String {
    let program = Path::new(c.get_program());
    let name = program.file_name().unwrap_or(program.as_os_str());
    std::iter::once(name)
        .chain(c.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command in the foreground, its output going to ours.
fn run(c: &mut Command) -> Result<(), String> {
    say(format!("$ {}", command_line(c)));
    let status = c
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", command_line(c)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", command_line(c)))
    }
}

/// Runs a command with its output kept back unless it fails.
fn quiet(c: &mut Command) -> Result<String, String> {
    let out = c
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", command_line(c)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}):\n{}{}",
            command_line(c),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn lint(paths: &Paths) -> Result<(), String> {
    run(cargo(paths).args(["fmt", "--all", "--check"]))?;
    run(cargo(paths).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The benchmarks are a workspace of their own (their peers, such as
    // Cedar, stay out of the test build); they must keep compiling and stay
    // lint-clean. They share the target directory, so the project's crates
    // are not built twice.
    run(cargo(paths).args(["fmt", "--manifest-path", "bench/Cargo.toml", "--check"]))?;
    run(cargo(paths)
        .args([
            "clippy",
            "--manifest-path",
            "bench/Cargo.toml",
            "--all-targets",
            "--locked",
        ])
        .args(["--", "-D", "warnings"])
        .env("CARGO_TARGET_DIR", &paths.target))
}

/// The edit–rebuild loop: one warm `cargo build --release`, then for each
/// `definitions/*.xml` (in name order) its modification time set to now
/// (what `touch` does; the content stays) and `cargo build --release`
/// timed. Prints a Markdown table with the packages each build compiled,
/// and the load average, since other work on the machine slows builds.
fn rebuild_times(paths: &Paths) -> Result<(), String> {
    let dir = paths.root.join("definitions");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", paths.show(&dir)))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    let build = |what: &str| -> Result<(f64, Vec<String>), String> {
        let mut c = cargo(paths);
        c.args(["build", "--release", "--locked"]);
        let started = Instant::now();
        let out = c
            .output()
            .map_err(|e| format!("cannot start `{}`: {e}", command_line(&c)))?;
        let secs = started.elapsed().as_secs_f64();
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            eprintln!("{log}");
            return Err(format!("`{}` failed {what}", command_line(&c)));
        }
        let compiled = log
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("Compiling "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        Ok((secs, compiled))
    };
    say(format!("load average before: {}", load_average()));
    say("$ cargo build --release --locked (warm-up)");
    let (secs, _) = build("(warm-up)")?;
    say(format!("warm-up build: {secs:.1} s"));
    let mut rows = Vec::new();
    for file in &files {
        let shown = paths.show(file).to_string();
        File::options()
            .append(true)
            .open(file)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()))
            .map_err(|e| format!("cannot touch {shown}: {e}"))?;
        let (secs, compiled) = build(&format!("after touching {shown}"))?;
        say(format!(
            "touch {shown}: {secs:.1} s ({})",
            compiled.join(", ")
        ));
        rows.push((shown, secs, compiled));
    }
    println!("| `touch` | `cargo build --release` | compiled |");
    println!("|---|---|---|");
    for (file, secs, compiled) in rows {
        println!("| `{file}` | {secs:.1} s | {} |", compiled.join(", "));
    }
    say(format!("load average after: {}", load_average()));
    Ok(())
}

/// The 1, 5 and 15 minute load averages (Linux), or why not.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn test(paths: &Paths, args: &[OsString]) -> Result<(), String> {
    let started = Instant::now();
    let tools = setup(paths)?;
    let mut c = cargo(paths);
    c.arg("test");
    // `-p PACKAGE` picks packages instead of the whole workspace (cargo
    // would let --workspace win).
    let picks_packages = args
        .iter()
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| a.starts_with("-p") || a.starts_with("--package"));
    if !picks_packages {
        c.arg("--workspace");
    }
    c.args(args);
    let mut shown = Vec::new();
    for (var, value) in tools.exports() {
        shown.push(format!("{var}={}", paths.show(Path::new(&value))));
        c.env(var, value);
    }
    say(format!(
        "set-up done in {:.1} s; the tests get {}",
        started.elapsed().as_secs_f64(),
        shown.join(" ")
    ));
    say(format!("$ {}", command_line(&c)));
    let status = c.status().map_err(|e| format!("cannot start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        // cargo test has said what failed; pass its exit code on.
        std::process::exit(status.code().unwrap_or(1))
    }
}

/// Where the tests' tools are.
struct Tools {
    venv: PathBuf,
    system: Vec<(&'static str, PathBuf)>,
}

impl Tools {
    fn exports(&self) -> Vec<(&'static str, OsString)> {
        let mut vars = vec![("AUFTRAG_TEST_VENV", self.venv.clone().into_os_string())];
        vars.extend(
            self.system
                .iter()
                .map(|(var, path)| (*var, path.clone().into_os_string())),
        );
        vars
    }
}

/// Finds or installs what the tests need. Two runs at once (in this
/// worktree) take turns: the second waits for the first's set-up.
fn setup(paths: &Paths) -> Result<Tools, String> {
    fs::create_dir_all(&paths.target).map_err(|e| format!("cannot create target/: {e}"))?;
    let lock_path = paths.target.join("xtask.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            say("waiting for another `cargo xtask` to finish its set-up");
            lock.lock()
                .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
        }
        Err(TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", lock_path.display()));
        }
    }

    let mut needs = system_needs()?;
    let missing: Vec<&Need> = needs.iter().filter(|n| n.found.is_none()).collect();
    if !missing.is_empty() {
        apt_install(&missing)?;
        needs = system_needs()?;
        if let Some(need) = needs.iter().find(|n| n.found.is_none()) {
            return Err(format!(
                "{} is still missing after installing the Debian package {}",
                need.what, need.package
            ));
        }
    }
    let mut python = None;
    let mut system = Vec::new();
    for need in needs {
        let found = need.found.expect("checked above");
        say(format!("{}: {}", need.what, found.display()));
        match need.var {
            Some(var) => system.push((var, found)),
            None => python = Some(found),
        }
    }
    let venv = python_venv(paths, &python.expect("python is a need"))?;
    drop(lock);
    Ok(Tools { venv, system })
}

/// A program the tests need from the system.
struct Need {
    what: &'static str,
    /// The variable that tells the tests where it is; None for Python,
    /// which only xtask uses (to make the venv).
    var: Option<&'static str>,
    /// The Debian package that brings it.
    package: &'static str,
    found: Option<PathBuf>,
}

fn system_needs() -> Result<Vec<Need>, String> {
    let mut needs = Vec::new();
    // PostgreSQL: a server named by AUFTRAG_TEST_POSTGRES, or else the
    // binaries for the throwaway cluster testkit starts.
    if env::var_os("AUFTRAG_TEST_POSTGRES").is_none() {
        needs.push(Need {
            what: "PostgreSQL's initdb/postgres",
            var: Some("AUFTRAG_TEST_PG_BIN"),
            package: "postgresql",
            found: given("AUFTRAG_TEST_PG_BIN")?.or_else(postgres_bin_dir),
        });
    }
    needs.push(Need {
        what: "Chromium",
        var: Some("AUFTRAG_TEST_CHROMIUM"),
        package: "chromium",
        found: given("AUFTRAG_TEST_CHROMIUM")?.or_else(|| which::which("chromium").ok()),
    });
    needs.push(Need {
        what: "ChromeDriver",
        var: Some("AUFTRAG_TEST_CHROMEDRIVER"),
        package: "chromium-driver",
        found: given("AUFTRAG_TEST_CHROMEDRIVER")?.or_else(|| which::which("chromedriver").ok()),
    });
    needs.push(Need {
        what: "Python 3 with venv",
        var: None,
        package: "python3-venv",
        found: which::which("python3").ok().filter(|python| {
            Command::new(python)
                .args(["-c", "import venv, ensurepip"])
                .output()
                .is_ok_and(|o| o.status.success())
        }),
    });
    Ok(needs)
}

/// A path the user gave in an environment variable; it must exist.
fn given(var: &str) -> Result<Option<PathBuf>, String> {
    match env::var_os(var) {
        Some(path) if Path::new(&path).exists() => Ok(Some(path.into())),
        Some(path) => Err(format!(
            "{var}={} does not exist; unset it to let `cargo xtask test` find or install it",
            Path::new(&path).display()
        )),
        None => Ok(None),
    }
}

/// The folder of PostgreSQL's real `initdb` and `postgres` (Debian's
/// /usr/bin wrappers need a cluster configuration): the one of `initdb` on
/// PATH, or else the newest /usr/lib/postgresql/VERSION/bin.
fn postgres_bin_dir() -> Option<PathBuf> {
    if let Ok(initdb) = which::which("initdb")
        && let Ok(real) = fs::canonicalize(initdb)
        && let Some(dir) = real.parent()
        && dir.join("postgres").exists()
    {
        return Some(dir.to_owned());
    }
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let entry = e.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn apt_install(missing: &[&Need]) -> Result<(), String> {
    let mut packages: Vec<&str> = missing.iter().map(|n| n.package).collect();
    packages.dedup();
    let packages = packages.join(" ");
    let what = missing
        .iter()
        .map(|n| n.what)
        .collect::<Vec<_>>()
        .join(", ");
    if !is_root() {
        let vars: Vec<&str> = missing.iter().filter_map(|n| n.var).collect();
        let or_vars = if vars.is_empty() {
            String::new()
        } else {
            format!(", or set {} to existing ones", vars.join(" / "))
        };
        return Err(format!(
            "the tests need {what}, which are not installed. Install them as root:\n    \
             sudo apt-get install {packages}\n\
             and run `cargo xtask test` again{or_vars}"
        ));
    }
    let started = Instant::now();
    say(format!(
        "installing the Debian packages {packages} (for {what}; apt-get, quiet)"
    ));
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.args(["-qq", "-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    quiet(&mut apt(&["update"]))?;
    quiet(apt(&["install", "-y"]).args(packages.split(' ')))?;
    say(format!(
        "installed {packages} in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The venv with the Python test servers of `xtask/requirements.txt`, made
/// once and made again only when that file (or the Python) changes: its
/// stamp file holds the Python version and the requirements it was made with.
fn python_venv(paths: &Paths, python: &Path) -> Result<PathBuf, String> {
    let requirements = paths.root.join("xtask").join("requirements.txt");
    let pinned = fs::read_to_string(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let version = quiet(Command::new(python).arg("--version"))?;
    let stamp_text = format!("{}\n{pinned}", version.trim());
    let venv = paths.target.join("xtask-venv");
    let stamp = venv.join("xtask-stamp");
    let bin = venv.join("bin");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == stamp_text)
        && PYTHON_TOOLS.iter().all(|t| bin.join(t).exists())
    {
        say(format!(
            "Python test servers: {} (made before from xtask/requirements.txt)",
            paths.show(&venv)
        ));
        return Ok(venv);
    }
    let started = Instant::now();
    say(format!(
        "making {} with the Python test servers of xtask/requirements.txt ({}; pip, quiet)",
        paths.show(&venv),
        PYTHON_TOOLS.join(", ")
    ));
    if venv.exists() {
        fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot remove the old {}: {e}", venv.display()))?;
    }
    quiet(Command::new(python).args([OsStr::new("-m"), "venv".as_ref(), venv.as_os_str()]))?;
    quiet(
        Command::new(bin.join("python"))
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(["--no-input", "-r"])
            .arg(&requirements),
    )?;
    if let Some(tool) = PYTHON_TOOLS.iter().find(|t| !bin.join(t).exists()) {
        return Err(format!(
            "xtask/requirements.txt installed no `{tool}` into {}",
            venv.display()
        ));
    }
    // Written last: a venv cut short has no stamp and is made again.
    fs::write(&stamp, stamp_text).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    say(format!(
        "made {} in {:.0} s",
        paths.show(&venv),
        started.elapsed().as_secs_f64()
    ));
    Ok(venv)
}

fn shell_quote(value: &OsStr) -> String {
    let s = value.to_string_lossy();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=,".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

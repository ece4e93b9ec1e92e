//! The programs the tests run besides PostgreSQL, found from the variables
//! `cargo xtask test` exports, and servers started from them on free ports.
//!
//! | variable | what | without it |
//! |---|---|---|
//! | `AUFTRAG_TEST_VENV` | a Python venv with the servers of `xtask/requirements.txt` | `target/xtask-venv` if an earlier `cargo xtask test` made it, else `PATH` |
//! | `AUFTRAG_TEST_CHROMIUM` | the Chromium executable | `chromium` on `PATH` |
//! | `AUFTRAG_TEST_CHROMEDRIVER` | the ChromeDriver executable | `chromedriver` on `PATH` |
//!
//! A test that needs a program that is not there panics, naming
//! `cargo xtask test` (which installs it).

use std::ffi::OsStr;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to do when a program is missing.
const HOW: &str = "Run the tests with `cargo xtask test`: it installs what they need \
                   (Debian packages as root, the Python test servers into a venv under target/) \
                   and says where with AUFTRAG_TEST_* variables";

/// The executable `name` of the Python test servers' venv (`secantusd-py`,
/// `aiosmtpd`, `schemathesis`, or `python`): in `AUFTRAG_TEST_VENV`, else
/// in the venv an earlier `cargo xtask test` made under target/, else on
/// `PATH`. Panics with what to do when there is none.
pub fn python_tool(name: &str) -> PathBuf {
    let venvs = std::env::var_os("AUFTRAG_TEST_VENV").map(PathBuf::from);
    if let Some(venv) = &venvs {
        let path = venv.join("bin").join(name);
        if path.exists() {
            return path;
        }
        panic!(
            "the test tool `{name}` is not in AUFTRAG_TEST_VENV={} (no bin/{name}). {HOW}",
            venv.display()
        );
    }
    let made = xtask_venv().join("bin").join(name);
    if made.exists() {
        return made;
    }
    which::which(name).unwrap_or_else(|_| {
        panic!(
            "the test tool `{name}` is not installed (not in {}, not on PATH). {HOW}, \
             or set AUFTRAG_TEST_VENV to a venv made with `pip install -r xtask/requirements.txt`",
            made.display()
        )
    })
}

/// The venv `cargo xtask test` makes (`target/xtask-venv` of this workspace).
fn xtask_venv() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ lies in the workspace");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("xtask-venv")
}

/// A program named by `var`, else `program` on `PATH`; panics with what to
/// do (naming the Debian `package`) when there is none.
fn system_tool(var: &str, program: &str, package: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "{var}={} does not exist. {HOW}",
            path.display()
        );
        return path;
    }
    which::which(program).unwrap_or_else(|_| {
        panic!(
            "the tests need `{program}`, which is not on PATH. {HOW}, \
             or install it (Debian: apt-get install {package}), or set {var} to it"
        )
    })
}

/// The Chromium executable (`AUFTRAG_TEST_CHROMIUM`, else `chromium` on PATH).
pub fn chromium() -> PathBuf {
    system_tool("AUFTRAG_TEST_CHROMIUM", "chromium", "chromium")
}

/// The ChromeDriver executable (`AUFTRAG_TEST_CHROMEDRIVER`, else
/// `chromedriver` on PATH).
pub fn chromedriver() -> PathBuf {
    system_tool(
        "AUFTRAG_TEST_CHROMEDRIVER",
        "chromedriver",
        "chromium-driver",
    )
}

/// Chromium's arguments for tests: headless, no sandbox (the tests may run
/// as root), and no connections of its own (the test machines reach no
/// Google hosts; each refused one would slow it down). Add a fresh
/// `--user-data-dir=…` per browser.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A server this process started on a free port of 127.0.0.1, with a
/// temporary folder of its own (for its data and its output, `output.log`).
/// Dropping it kills the server and removes the folder.
pub struct Service {
    name: String,
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
    /// How it was started, to start it again ([`Service::restart`]).
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
}

impl Service {
    /// Starts `program` with the arguments `args` adds, given the port to
    /// listen on (127.0.0.1) and the service's folder, and waits until the
    /// port accepts connections. Panics with the server's output when it
    /// exits first or is not listening within 60 s.
    pub fn start(program: &Path, args: impl FnOnce(&mut Command, u16, &Path)) -> Service {
        let name = program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned();
        let dir = tempfile::Builder::new()
            .prefix(&format!("auftrag-test-{name}-"))
            .tempdir()
            .expect("a temporary folder");
        let port = free_port();
        let mut command = Command::new(program);
        args(&mut command, port, dir.path());
        let args: Vec<std::ffi::OsString> = command.get_args().map(OsStr::to_owned).collect();
        let child = Self::spawn(program, &args, dir.path());
        let mut service = Service {
            name,
            port,
            child,
            dir,
            program: program.to_owned(),
            args,
        };
        service.wait_until_listening();
        service
    }

    fn spawn(program: &Path, args: &[std::ffi::OsString], dir: &Path) -> Child {
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join("output.log"))
            .expect("open output.log");
        Command::new(program)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("output.log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
    }

    /// Kills the server (SIGKILL: no goodbye to its clients), keeping its
    /// folder and port, so that [`Service::restart`] brings it back with
    /// its data.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again, as it was started first, on the same port
    /// and folder, and waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.program, &self.args, self.dir.path());
        self.wait_until_listening();
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before listening on port {}:\n{}",
                    self.name,
                    self.port,
                    self.output()
                );
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} was not listening on port {} within 60 s:\n{}",
                self.name,
                self.port,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.port).into()
    }

    /// The service's own folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SecantusDB server (MongoDB wire protocol) with its data in the
/// service's folder; its URL is
/// `mongodb://127.0.0.1:{port}/?directConnection=true`. It presents itself
/// as a one-node replica set, so transactions and change streams work.
pub fn secantusdb() -> Service {
    Service::start(&python_tool("secantusd-py"), |c, port, dir| {
        c.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--storage-path")
            .arg(dir.join("data"))
            .args(["--log-level", "WARNING"]);
    })
}

/// An SMTP server (aiosmtpd) that accepts every message and prints it to
/// its output ([`Service::output`]): headers, a blank line, the body.
pub fn smtp_server() -> Service {
    Service::start(&python_tool("aiosmtpd"), |c, port, _| {
        c.args(["--nosetuid", "--listen"])
            .arg(format!("127.0.0.1:{port}"));
    })
}

/// A ChromeDriver (WebDriver on `http://127.0.0.1:{port}`); give sessions
/// [`chromium`] as `goog:chromeOptions.binary` and [`CHROMIUM_ARGS`].
pub fn chromedriver_server() -> Service {
    Service::start(&chromedriver(), |c, port, _| {
        c.arg(format!("--port={port}"));
    })
}

/// Runs a venv tool to its end (e.g. `schemathesis run …`) and returns its
/// output; panics with it when the tool fails.
pub fn run_python_tool(name: &str, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> String {
    let program = python_tool(name);
    let out = Command::new(&program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{name}` failed ({}):\n{text}",
        out.status
    );
    text
}

//! Server processes under test: started as children (this binary re-executed in a server
//! mode), addressed by the line they print, measured through `/proc`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server child process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Runs `keyward-bench <args>` and waits for the line `... listening on http://ADDR`.
    pub fn spawn(args: &[String]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        Self::spawn_program(&exe.display().to_string(), args)
    }

    /// Runs a program that starts a server and reports its address.
    pub fn spawn_program(program: &str, args: &[String]) -> Result<Self, String> {
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some((_, a)) = line.split_once("listening on http://") {
                addr = a.trim().parse().ok();
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let addr = addr.ok_or_else(|| format!("server did not start (exit: {:?})", child.try_wait()))?;
        Ok(Self { child, addr })
    }

    /// CPU time used so far (user + system), in microseconds.
    pub fn cpu_us(&self) -> u64 {
        cpu_us(self.child.id())
    }

    /// Stops the server gracefully (SIGTERM), waiting up to 30 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..600 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU microseconds of a process from `/proc/PID/stat` (utime + stime, in clock ticks of 10 ms).
pub fn cpu_us(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // Fields after the command name (which may contain spaces) start at the state, field 3.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime is field 14 and stime field 15: indexes 11 and 12 after the state (field 3).
    (ticks(11) + ticks(12)) * 10_000
}

/// CPU microseconds of every process of a user name matching `comm` (Postgres backends).
pub fn cpu_us_of_command(comm: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm))
        .map(cpu_us)
        .sum()
}

//! `fake-ecr`: runs FakeEcr as a process for scripts and benchmarks (the soak of
//! scripts/soak.sh), controlled through standard input, one command per line:
//!
//! - `token USER PASSWORD EXPIRES_EPOCH` sets the token handed out;
//! - `fault throttling` | `fault reset` | `fault delay MS` | `fault status CODE TYPE` |
//!   `fault xml CODE TYPE` queues a fault for the next request;
//! - `clear` drops the queued faults and the recorded requests;
//! - `requests` answers `ok N`, the number of requests recorded since the last `clear`.
//!
//! Each command is answered with one line on standard output, `ok` (or `ok N`) or
//! `error: ...`, after it took effect. `fake-ecr [--port N]` prints exactly one line
//! `listening on http://127.0.0.1:PORT` first, and exits when standard input closes.

use ecrupdater_testkit::{AwsFault, FakeEcr};
use std::io::{BufRead, Write};
use std::time::Duration;

const USAGE: &str = "\
usage: fake-ecr [--port N]

A fake ECR endpoint (GetAuthorizationToken) on 127.0.0.1 for scripts and benchmarks. It prints
one line, `listening on http://127.0.0.1:PORT`, then takes one command per line on standard
input, answers each with `ok` (or `ok N`) or `error: ...`, and exits when standard input closes.

  token USER PASSWORD EXPIRES_EPOCH   the token handed out from now on
  fault throttling | fault reset | fault delay MS | fault status CODE TYPE | fault xml CODE TYPE
                                      a fault for the next request
  clear                               drop the queued faults and the recorded requests
  requests                            `ok N`: requests recorded since the last clear

  --port N      listen on N (default: a free port)
  -h, --help    print this and exit
";

fn usage(msg: &str) -> ! {
    eprintln!("fake-ecr: {msg}");
    eprint!("{USAGE}");
    std::process::exit(2)
}

fn command(ecr: &FakeEcr, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |s: &str| s.parse::<u64>().map_err(|_| format!("not a number: {s:?}"));
    match words.as_slice() {
        ["token", user, password, expires] => {
            let expires: f64 = expires
                .parse()
                .map_err(|_| format!("not a number: {expires:?}"))?;
            ecr.set_token(user, password, expires);
        }
        ["fault", "throttling"] => ecr.inject(AwsFault::Throttling),
        ["fault", "reset"] => ecr.inject(AwsFault::Reset),
        ["fault", "delay", ms] => ecr.inject(AwsFault::Delay(Duration::from_millis(number(ms)?))),
        ["fault", "status", code, ty] => {
            let code = u16::try_from(number(code)?).map_err(|e| e.to_string())?;
            ecr.inject(AwsFault::Status(code, ty.to_string()));
        }
        ["fault", "xml", code, ty] => {
            let code = u16::try_from(number(code)?).map_err(|e| e.to_string())?;
            ecr.inject(AwsFault::XmlError(code, ty.to_string()));
        }
        ["clear"] => {
            ecr.clear_faults();
            ecr.clear_requests();
        }
        ["requests"] => return Ok(format!("ok {}", ecr.requests().len())),
        _ => return Err(format!("unknown command {line:?}")),
    }
    Ok("ok".to_string())
}

fn main() {
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("bad --port"))
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return;
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let (ecr, _) = match FakeEcr::bind(port, false) {
        Ok(x) => x,
        Err(e) => usage(&format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", ecr.base_url());
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let answer = command(&ecr, &line).unwrap_or_else(|e| format!("error: {e}"));
        if writeln!(out, "{answer}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}

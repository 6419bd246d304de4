//! Reduces and compares recordings of real clients (tests/real-clients, docs/fidelity.md).
//!
//!   fidelity-clients reduce RAW.jsonl OUT.json [TARGET]
//!   fidelity-clients compare REFERENCE CANDIDATE ALLOW_LIST
//!
//! A recording is either raw proxy lines (`.jsonl`) or a reduced run (`.json`, shapes only).
//! `compare` prints every difference (the allowed ones with their reason) and exits 1 when a
//! difference is not in the allow-list.

use std::path::Path;
use std::process::ExitCode;

use fidelity::clients::{compare_recordings, load};
use fidelity::AllowList;

const USAGE: &str = "usage: fidelity-clients reduce RAW.jsonl OUT.json [TARGET]\n       fidelity-clients compare REFERENCE CANDIDATE ALLOW_LIST";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["reduce", raw, out] => reduce(raw, out, "rig"),
        ["reduce", raw, out, target] => reduce(raw, out, target),
        ["compare", reference, candidate, allow] => compare(reference, candidate, allow),
        _ => Err(format!("unexpected arguments {argv:?}\n{USAGE}")),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fidelity-clients: {e}");
            ExitCode::from(2)
        }
    }
}

fn reduce(raw: &str, out: &str, target: &str) -> Result<bool, String> {
    let run = load(Path::new(raw), target).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&run).map_err(|e| e.to_string())?;
    std::fs::write(out, text + "\n").map_err(|e| format!("cannot write {out}: {e}"))?;
    println!("{out}: {} distinct requests", run.steps.len());
    Ok(true)
}

fn compare(reference: &str, candidate: &str, allow: &str) -> Result<bool, String> {
    let r = load(Path::new(reference), "real").map_err(|e| e.to_string())?;
    let c = load(Path::new(candidate), "sandbox").map_err(|e| e.to_string())?;
    if r.steps.is_empty() || c.steps.is_empty() {
        return Err(format!(
            "empty recording ({reference}: {} requests, {candidate}: {} requests): the client never reached the proxy",
            r.steps.len(),
            c.steps.len()
        ));
    }
    let allow = AllowList::load(Path::new(allow)).map_err(|e| e.to_string())?;
    let (failing, allowed) = compare_recordings(&r, &c, &allow);
    for (d, reason) in &allowed {
        println!("allowed: {d}  [{reason}]");
    }
    println!(
        "{} requests real, {} sandbox: {} difference(s) not in the allow-list ({} allowed)",
        r.steps.len(),
        c.steps.len(),
        failing.len(),
        allowed.len()
    );
    for d in &failing {
        println!("  {d}");
    }
    Ok(failing.is_empty())
}

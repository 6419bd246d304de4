//! The text form of `doctor`'s report: what an operator reads in a terminal. The verdicts
//! are `model::doctor`'s; only their layout is decided here.

use model::doctor::{Report, Status};

/// Plain-text rendering: one line per check with its mark and evidence; each ✗ is followed by
/// an indented `fix:` line (warnings keep their advice in the JSON form); the verdict last.
pub fn render_text(report: &Report) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in &report.checks {
        out.push_str(&format!(
            "{} {:<width$}  {}\n",
            c.status.mark(),
            c.title,
            c.evidence
        ));
        if let Some(fix) = &c.fix {
            if c.status == Status::Fail {
                out.push_str(&format!("  {:<width$}  fix: {fix}\n", ""));
            }
        }
    }
    out.push_str(&format!(
        "\n{} {}\n",
        if report.would_work { "✓" } else { "✗" },
        report.summary
    ));
    out
}

#[cfg(test)]
mod tests {
    use model::doctor::Check;

    use super::*;

    fn check(status: Status, title: &str, evidence: &str, fix: Option<&str>) -> Check {
        Check {
            status,
            title: title.into(),
            evidence: evidence.into(),
            fix: fix.map(String::from),
        }
    }

    #[test]
    fn failures_carry_their_fix_and_the_verdict_comes_last() {
        let report = Report {
            checks: vec![
                check(Status::Ok, "cloud.conf", "parsed", None),
                check(
                    Status::Warn,
                    "TLS",
                    "tls-insecure = true",
                    Some("set ca-file instead"),
                ),
                check(
                    Status::Fail,
                    "floating network",
                    "the cloud has no external network",
                    Some("ask the cloud operator for an external network"),
                ),
            ],
            would_work: false,
            summary: "a LoadBalancer Service would NOT work: 1 problem(s) to fix, 0 warning(s)"
                .into(),
        };
        let text = render_text(&report);
        assert!(
            text.lines().any(|l| l.starts_with("✗ floating network")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("fix: ask the cloud operator")),
            "{text}"
        );
        assert!(
            !text.contains("set ca-file instead"),
            "warnings keep their advice in the JSON form: {text}"
        );
        assert!(
            text.trim_end()
                .ends_with("1 problem(s) to fix, 0 warning(s)"),
            "{text}"
        );
    }
}

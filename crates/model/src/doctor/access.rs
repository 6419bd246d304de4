//! Access: credentials, TLS and authentication. When they fail nothing else can be
//! checked, so the report stops there.

use super::*;

/// Credentials, TLS and authentication. Returns false when nothing else can be checked.
pub(super) fn check_access(config: &CloudConfig, facts: &Facts, r: &mut Builder) -> bool {
    let g = &config.global;
    match g.credential_kind() {
        Ok(kind) => {
            let who = g
                .user_id
                .as_deref()
                .or(g.username.as_deref())
                .or(g.trustee_id.as_deref())
                .unwrap_or("-");
            let subject = match kind {
                crate::config::CredentialKind::ApplicationCredentialId => g
                    .application_credential_id
                    .as_deref()
                    .unwrap_or("-")
                    .to_string(),
                _ => who.to_string(),
            };
            r.ok(
                "credentials",
                format!(
                    "{} for {subject} at {}",
                    kind.describe(),
                    g.auth_url.as_deref().unwrap_or("-")
                ),
            );
        }
        Err(e) => {
            r.fail(
                "credentials",
                e.to_string(),
                "fill [Global] in cloud.conf (or use-clouds = true with a clouds.yaml); see docs/configuration.md",
            );
            return false;
        }
    }
    if g.tls_insecure {
        r.warn(
            "TLS",
            "tls-insecure = true: server certificates are NOT verified; anyone on the path can read the credentials",
            "set [Global] ca-file to the cloud's CA bundle and remove tls-insecure",
        );
    } else if let Some(ca) = &g.ca_file {
        r.ok(
            "TLS",
            format!("server certificates verified against ca-file {ca}"),
        );
    }
    let auth = match &facts.auth {
        Probe::Got(a) => a,
        Probe::Skipped => return false,
        Probe::Failed(e) => {
            let url = g.auth_url.as_deref().unwrap_or("-");
            let fix = match e.kind {
                ProbeErrorKind::Unauthorized => {
                    "Keystone rejected the credentials: check the password/secret, the user and its domain \
                     (user-domain-name), the project, and that an application credential or trust has not \
                     expired or been deleted"
                        .to_string()
                }
                ProbeErrorKind::Forbidden => "the user may not use this project: check project-id/-name and its domain, \
                     or the trust/application-credential roles"
                    .to_string(),
                ProbeErrorKind::NotFound => format!(
                    "{url} has no tokens API: auth-url must be Keystone's v3 root, e.g. https://keystone.example.com:5000/v3"
                ),
                ProbeErrorKind::Unreachable => {
                    format!("cannot reach {url}: check the URL, DNS, proxies and firewalls from where the controller runs")
                }
                ProbeErrorKind::Tls => "TLS failed: set ca-file to the CA that signed Keystone's certificate \
                     (or cert-file/key-file if client certificates are required)"
                    .to_string(),
                ProbeErrorKind::Config => {
                    "fix [Global] in cloud.conf as the message says (auth-url, ca-file, cert-file/key-file)".to_string()
                }
                ProbeErrorKind::Server | ProbeErrorKind::Other => {
                    "Keystone failed; retry later or ask the cloud operator".to_string()
                }
            };
            r.fail("authentication", format!("{url}: {}", e.message), fix);
            return false;
        }
    };
    let user = auth.user_name.as_deref().unwrap_or(&auth.user_id);
    match (&auth.project_id, &auth.project_name) {
        (Some(id), name) => r.ok(
            "authentication",
            format!(
                "token for user {user} in project {} ({id}); roles: {}",
                name.as_deref().unwrap_or("?"),
                if auth.roles.is_empty() {
                    "none".to_string()
                } else {
                    auth.roles.join(", ")
                }
            ),
        ),
        (None, _) => {
            r.fail(
                "authentication",
                format!("the token for {user} is not scoped to a project"),
                "set [Global] project-id (or project-name with project-domain-name)",
            );
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;
    use crate::config::CloudConfig;

    #[test]
    fn wrong_password_stops_after_authentication() {
        let mut facts = healthy();
        facts.auth = Probe::failed(
            ProbeErrorKind::Unauthorized,
            "The request you have made requires authentication.",
        );
        let report = evaluate(&conf(""), &facts);
        let fail = only_failure(&report);
        assert_eq!(fail.title, "authentication");
        assert!(
            fail.fix.as_deref().unwrap().contains("password"),
            "{fail:?}"
        );
        assert!(
            statuses(&report, "catalog").is_empty(),
            "nothing after a failed authentication"
        );
    }

    #[test]
    fn authentication_failures_get_specific_fixes() {
        for (kind, needle) in [
            (
                ProbeErrorKind::Unreachable,
                "cannot reach https://keystone.example.com/v3",
            ),
            (ProbeErrorKind::Tls, "ca-file"),
            (ProbeErrorKind::NotFound, "Keystone's v3 root"),
            (ProbeErrorKind::Forbidden, "project-id"),
            (ProbeErrorKind::Server, "retry later"),
        ] {
            let mut facts = healthy();
            facts.auth = Probe::failed(kind, "boom");
            let report = evaluate(&conf(""), &facts);
            let fail = only_failure(&report);
            assert!(
                fail.fix.as_deref().unwrap().contains(needle),
                "{kind:?}: {fail:?}"
            );
            assert!(fail.evidence.contains("boom"));
        }
    }

    #[test]
    fn missing_credentials_fail_before_any_call() {
        let cfg = CloudConfig::parse("[Global]\nauth-url = https://k/v3\n")
            .unwrap()
            .0;
        let report = evaluate(&cfg, &Facts::default());
        let fail = only_failure(&report);
        assert_eq!(fail.title, "credentials");
        assert!(fail.evidence.contains("no usable credentials"), "{fail:?}");
    }

    #[test]
    fn unscoped_token_fails() {
        let mut facts = healthy();
        if let Probe::Got(a) = &mut facts.auth {
            a.project_id = None;
        }
        let fail_title = only_failure(&evaluate(&conf(""), &facts)).title.clone();
        assert_eq!(fail_title, "authentication");
    }
}

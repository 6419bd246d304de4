//! cloud.conf parsing: real OCCM / Magnum / in-tree layouts parse unchanged, every key's
//! invalid values are errors naming section, key, value and the accepted forms, unknown
//! sections and keys are warnings, and secrets never reach Debug output or errors.

use std::time::Duration;

use model::config::{
    CloudConfig, ConfigError, CredentialKind, EndpointInterface, LbMethod, LbaasGeneration, Secret,
};

fn parse_ok(text: &str) -> (CloudConfig, Vec<model::config::ConfigWarning>) {
    match CloudConfig::parse(text) {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e}\n{text}"),
    }
}

fn parse_err(text: &str) -> ConfigError {
    match CloudConfig::parse(text) {
        Ok(v) => panic!("expected an error for\n{text}\ngot {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn magnum_trust_layout_parses_unchanged() {
    let (cfg, warnings) = parse_ok(include_str!("fixtures/cloudconf/magnum-trust.conf"));
    let g = &cfg.global;
    assert_eq!(
        g.auth_url.as_deref(),
        Some("https://keystone.example.com:5000/v3")
    );
    assert_eq!(
        g.user_id.as_deref(),
        Some("9a2e3f0c1b4d4e5f8a7b6c5d4e3f2a1b")
    );
    assert_eq!(
        g.password.as_ref().map(Secret::expose),
        Some("Tr4stee-Pa55")
    );
    assert_eq!(
        g.trust_id.as_deref(),
        Some("7f6e5d4c3b2a41908f7e6d5c4b3a2910")
    );
    assert_eq!(g.ca_file.as_deref(), Some("/etc/kubernetes/ca-bundle.crt"));
    assert_eq!(g.region.as_deref(), Some("RegionOne"));
    assert_eq!(g.credential_kind(), Ok(CredentialKind::PasswordTrust));
    let lb = &cfg.load_balancer;
    assert_eq!(lb.lbaas, Some(LbaasGeneration::Octavia));
    assert_eq!(
        lb.placement.subnet_id.as_deref(),
        Some("0d7c1a5e-6f4b-4c3a-9e2d-1b0a9f8e7d6c")
    );
    assert_eq!(
        lb.placement.floating_network_id.as_deref(),
        Some("4f3e2d1c-0b9a-4877-b665-5443a2b1c0d9")
    );
    assert!(lb.create_monitor);
    assert_eq!(lb.monitor_delay, Duration::from_secs(60));
    assert_eq!(lb.monitor_timeout, Duration::from_secs(30));
    assert_eq!(lb.monitor_max_retries, 3);
    // [BlockStorage] is somebody else's section: one warning, no error.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].section, "BlockStorage");
    assert_eq!(warnings[0].line, 16);
}

#[test]
fn occm_application_credential_layout() {
    let (cfg, warnings) = parse_ok(include_str!(
        "fixtures/cloudconf/occm-application-credential.conf"
    ));
    let g = &cfg.global;
    assert_eq!(
        g.application_credential_id.as_deref(),
        Some("1b7c9a2d3e4f4a5b8c6d7e8f9a0b1c2d")
    );
    assert_eq!(
        g.application_credential_secret.as_ref().map(Secret::expose),
        Some("s3cr3t;with#specials"),
        "quoted values keep ; and #"
    );
    assert_eq!(g.endpoint_interface, EndpointInterface::Internal);
    assert_eq!(
        g.credential_kind(),
        Ok(CredentialKind::ApplicationCredentialId)
    );
    let lb = &cfg.load_balancer;
    assert_eq!(lb.lbaas, None);
    assert!(lb.lbaas_exclude_v1, "lb-version = v2 rules out LBaaS v1");
    assert_eq!(lb.lb_provider.as_deref(), Some("ovn"));
    assert_eq!(lb.lb_method, LbMethod::SourceIpPort);
    assert!(lb.manage_security_groups);
    assert_eq!(lb.max_shared_lb, 4);
    let n = &cfg.networking;
    assert_eq!(
        n.public_network_name,
        vec!["public", "public-v6"],
        "multi-valued keys accumulate"
    );
    assert_eq!(n.internal_network_name, vec!["k8s-nodes"]);
    assert_eq!(
        n.address_sort_order,
        vec![
            "10.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
            "fd00::/8".parse().unwrap()
        ]
    );
    assert_eq!(cfg.metadata.request_timeout, Duration::from_secs(45));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].key.as_deref(), Some("search-order"));
}

#[test]
fn occm_password_layout_with_quotes_and_escapes() {
    let (cfg, warnings) = parse_ok(include_str!("fixtures/cloudconf/occm-password.conf"));
    let g = &cfg.global;
    assert_eq!(g.username.as_deref(), Some("kubernetes"));
    assert_eq!(
        g.password.as_ref().map(Secret::expose),
        Some("p@ss\"word\\x")
    );
    assert_eq!(
        g.project_id.as_deref(),
        Some("c869168a828847f39f7f06edd7305637"),
        "tenant-id is project-id"
    );
    assert_eq!(g.domain_name.as_deref(), Some("Default"));
    assert_eq!(g.user_domain_name.as_deref(), Some("Default"));
    assert!(!g.tls_insecure);
    assert_eq!(g.credential_kind(), Ok(CredentialKind::Password));
    let lb = &cfg.load_balancer;
    assert_eq!(
        lb.flavor_id.as_deref(),
        Some("a7b1e0d4-3c2f-4e1d-9b8a-7c6d5e4f3a2b")
    );
    assert_eq!(lb.availability_zone.as_deref(), Some("az1"));
    assert_eq!(lb.monitor_delay, Duration::from_secs(5));
    assert_eq!(lb.monitor_max_retries_down, 3);
    assert_eq!(
        lb.node_selector,
        vec![
            ("node-role.kubernetes.io/worker".to_string(), None),
            (
                "topology.kubernetes.io/zone".to_string(),
                Some("az1".to_string())
            ),
        ]
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].section, "BlockStorage");
}

#[test]
fn occm_classes() {
    let (cfg, warnings) = parse_ok(include_str!("fixtures/cloudconf/occm-classes.conf"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cfg.classes.len(), 2);
    let internet = cfg
        .class("internetfacing")
        .expect("class lookup is case-insensitive");
    assert_eq!(internet.name, "internetFacing");
    assert_eq!(
        internet.placement.floating_network_id.as_deref(),
        Some("22222222-2222-4222-8222-222222222222")
    );
    assert_eq!(
        internet.placement.floating_subnet_id.as_deref(),
        Some("33333333-3333-4333-8333-333333333333")
    );
    let dmz = cfg.class("dmz").unwrap();
    assert_eq!(dmz.placement.floating_subnet.as_deref(), Some("dmz-*"));
    assert_eq!(dmz.placement.floating_subnet_tags, vec!["dmz", "edge"]);
    assert_eq!(
        dmz.placement.member_subnet_id.as_deref(),
        Some("55555555-5555-4555-8555-555555555555")
    );
    assert_eq!(cfg.global.project_name.as_deref(), Some("k8s"));
    assert_eq!(cfg.global.project_domain_name.as_deref(), Some("Default"));
}

#[test]
fn in_tree_legacy_layout_is_case_insensitive() {
    let (cfg, warnings) = parse_ok(include_str!("fixtures/cloudconf/intree-legacy.conf"));
    assert_eq!(
        cfg.global.auth_url.as_deref(),
        Some("http://controller:5000/v3")
    );
    assert_eq!(cfg.global.project_name.as_deref(), Some("admin"));
    let lb = &cfg.load_balancer;
    assert_eq!(lb.lbaas, Some(LbaasGeneration::NeutronV1));
    assert_eq!(lb.lb_method, LbMethod::LeastConnections);
    assert!(lb.create_monitor);
    assert!(lb.manage_security_groups);
    assert_eq!(
        lb.monitor_delay,
        Duration::from_secs(60),
        "bare integers are seconds"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].section, "Route");
}

#[test]
fn defaults_follow_occm() {
    let (cfg, warnings) = parse_ok("");
    assert!(warnings.is_empty());
    let lb = &cfg.load_balancer;
    assert!(lb.enabled);
    assert!(!lb.create_monitor);
    assert_eq!(lb.monitor_delay, Duration::from_secs(5));
    assert_eq!(lb.monitor_timeout, Duration::from_secs(3));
    assert_eq!(lb.monitor_max_retries, 1);
    assert_eq!(lb.monitor_max_retries_down, 3);
    assert_eq!(lb.lb_method, LbMethod::RoundRobin);
    assert!(lb.cascade_delete);
    assert_eq!(lb.max_shared_lb, 2);
    assert_eq!(lb.ingress_hostname_suffix, "nip.io");
    assert_eq!(cfg.metadata.request_timeout, Duration::from_secs(60));
    assert_eq!(cfg.global.endpoint_interface, EndpointInterface::Public);
    assert!(matches!(
        cfg.global.credential_kind(),
        Err(ConfigError::NoCredentials(_))
    ));
}

#[test]
fn every_key_is_recognised() {
    let text = r#"
[Global]
auth-url = https://k/v3
username = u
user-id = uid
password = p
tenant-id = t
project-id = p2
tenant-name = tn
project-name = pn
tenant-domain-id = tdi
tenant-domain-name = tdn
domain-id = di
domain-name = dn
user-domain-id = udi
user-domain-name = udn
region = r
ca-file = /ca
cert-file = /cert
key-file = /key
tls-insecure = yes
os-endpoint-type = admin
application-credential-id = aci
application-credential-name = acn
application-credential-secret = acs
trust-id = ti
trustee-id = tei
trustee-password = tep
use-clouds = false
clouds-file = /cf
cloud = c
[LoadBalancer]
enabled = off
use-octavia = true
lb-version = v2
floating-network-id = fn
floating-subnet-id = fs
floating-subnet = f*
floating-subnet-tags = a,b
lb-method = source_ip
lb-provider = amphora
network-id = n
subnet-id = s
member-subnet-id = m
manage-security-groups = true
node-security-group = sg
create-monitor = true
monitor-delay = 1m30s
monitor-timeout = 10
monitor-max-retries = 5
monitor-max-retries-down = 0x2
internal-lb = true
node-selector = a=b
cascade-delete = false
flavor-id = f
availability-zone = az
enable-ingress-hostname = true
ingress-hostname-suffix = example.com
default-tls-container-ref = https://barbican/v1/containers/x
container-store = external
max-shared-lb = 3
provider-requires-serial-api-calls = true
[LoadBalancerClass "c"]
floating-network-id = cfn
floating-subnet-id = cfs
floating-subnet = cf*
floating-subnet-tags = x
network-id = cn
subnet-id = cs
member-subnet-id = cm
[Networking]
ipv6-support-disabled = true
public-network-name = pub
internal-network-name = int
address-sort-order = 192.168.0.0/16
[Metadata]
request-timeout = 500ms
api-rate-limit = 0
api-rate-burst = 7
"#;
    let (cfg, warnings) = parse_ok(text);
    // tenant-id/project-id and tenant-name/project-name are aliases written twice with different values.
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings
        .iter()
        .all(|w| w.message.contains("last value wins")));
    let g = &cfg.global;
    assert_eq!(g.project_id.as_deref(), Some("p2"));
    assert_eq!(g.project_name.as_deref(), Some("pn"));
    assert_eq!(g.project_domain_id.as_deref(), Some("tdi"));
    assert_eq!(g.project_domain_name.as_deref(), Some("tdn"));
    assert!(g.tls_insecure);
    assert_eq!(g.endpoint_interface, EndpointInterface::Admin);
    assert_eq!(g.trustee_password.as_ref().map(Secret::expose), Some("tep"));
    assert_eq!(g.cloud.as_deref(), Some("c"));
    let lb = &cfg.load_balancer;
    assert!(!lb.enabled);
    assert_eq!(lb.lbaas, Some(LbaasGeneration::Octavia));
    assert_eq!(lb.lb_method, LbMethod::SourceIp);
    assert_eq!(lb.monitor_delay, Duration::from_secs(90));
    assert_eq!(lb.monitor_timeout, Duration::from_secs(10));
    assert_eq!(lb.monitor_max_retries_down, 2);
    assert!(lb.internal_lb && !lb.cascade_delete && lb.enable_ingress_hostname);
    assert!(lb.provider_requires_serial_api_calls);
    assert_eq!(lb.container_store.as_deref(), Some("external"));
    assert_eq!(lb.max_shared_lb, 3);
    assert_eq!(lb.placement.floating_subnet_tags, vec!["a", "b"]);
    assert_eq!(
        cfg.class("c")
            .unwrap()
            .placement
            .member_subnet_id
            .as_deref(),
        Some("cm")
    );
    assert!(cfg.networking.ipv6_support_disabled);
    assert_eq!(cfg.metadata.request_timeout, Duration::from_millis(500));
    assert_eq!(cfg.metadata.api_rate_limit, 0, "0 switches the limit off");
    assert_eq!(cfg.metadata.api_rate_burst, 7);
}

#[test]
fn invalid_values_name_section_key_value_and_accepted_forms() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "[LoadBalancer]\nlb-method = RANDOM\n",
            "LoadBalancer",
            "lb-method",
            "RANDOM",
            "SOURCE_IP_PORT",
        ),
        (
            "[LoadBalancer]\nlb-version = v3\n",
            "LoadBalancer",
            "lb-version",
            "v3",
            "v1 or v2",
        ),
        (
            "[Global]\nos-endpoint-type = private\n",
            "Global",
            "os-endpoint-type",
            "private",
            "public, internal or admin",
        ),
        (
            "[LoadBalancer]\ncreate-monitor = maybe\n",
            "LoadBalancer",
            "create-monitor",
            "maybe",
            "yes/no",
        ),
        (
            "[LoadBalancer]\nmonitor-delay = 1d\n",
            "LoadBalancer",
            "monitor-delay",
            "1d",
            "1m30s",
        ),
        (
            "[LoadBalancer]\nmonitor-delay = 1500ms\n",
            "LoadBalancer",
            "monitor-delay",
            "1500ms",
            "whole number of seconds",
        ),
        (
            "[LoadBalancer]\nmonitor-max-retries = 11\n",
            "LoadBalancer",
            "monitor-max-retries",
            "11",
            "from 1 to 10",
        ),
        (
            "[LoadBalancer]\nmax-shared-lb = 0\n",
            "LoadBalancer",
            "max-shared-lb",
            "0",
            "an integer from 1",
        ),
        (
            "[LoadBalancer]\nnode-selector = a=b c\n",
            "LoadBalancer",
            "node-selector",
            "a=b c",
            "key=value",
        ),
        (
            "[LoadBalancer]\ncontainer-store = vault\n",
            "LoadBalancer",
            "container-store",
            "vault",
            "barbican or external",
        ),
        (
            "[LoadBalancer]\nfloating-subnet = [abc\n",
            "LoadBalancer",
            "floating-subnet",
            "[abc",
            "glob",
        ),
        (
            "[LoadBalancer]\ningress-hostname-suffix = a..b\n",
            "LoadBalancer",
            "ingress-hostname-suffix",
            "a..b",
            "DNS suffix",
        ),
        (
            "[Networking]\naddress-sort-order = 10.0.0.0/8, nope\n",
            "Networking",
            "address-sort-order",
            "10.0.0.0/8, nope",
            "CIDRs",
        ),
        (
            "[Networking]\nipv6-support-disabled = 2\n",
            "Networking",
            "ipv6-support-disabled",
            "2",
            "on/off",
        ),
        (
            "[Metadata]\nrequest-timeout = 0s\n",
            "Metadata",
            "request-timeout",
            "0s",
            "positive duration",
        ),
        (
            "[Metadata]\nrequest-timeout = soon\n",
            "Metadata",
            "request-timeout",
            "soon",
            "bare seconds",
        ),
        (
            "[Metadata]\napi-rate-limit = fast\n",
            "Metadata",
            "api-rate-limit",
            "fast",
            "an integer from 0 to 100000",
        ),
        (
            "[Metadata]\napi-rate-burst = 0\n",
            "Metadata",
            "api-rate-burst",
            "0",
            "an integer from 1 to 100000",
        ),
        (
            "[Global]\ntls-insecure = sure\n",
            "Global",
            "tls-insecure",
            "sure",
            "true/false",
        ),
        (
            "[LoadBalancerClass \"x\"]\n[LoadBalancer]\nenabled = nein\n",
            "LoadBalancer",
            "enabled",
            "nein",
            "yes/no",
        ),
    ];
    for (text, section, key, value, accepted) in cases {
        match parse_err(text) {
            ConfigError::InvalidValue {
                section: s,
                key: k,
                value: v,
                accepted: a,
                line,
            } => {
                assert_eq!(&s, section, "{text}");
                assert_eq!(&k, key, "{text}");
                assert_eq!(&v, value, "{text}");
                assert!(a.contains(accepted), "{text}: accepted = {a}");
                assert!(line >= 2, "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn error_message_reads_well() {
    let err = parse_err("[LoadBalancer]\n\nlb-method = RANDOM\n");
    assert_eq!(
        err.to_string(),
        "cloud.conf line 3: [LoadBalancer] lb-method = \"RANDOM\" is invalid; accepted: ROUND_ROBIN, \
         LEAST_CONNECTIONS, SOURCE_IP, SOURCE_IP_PORT"
    );
}

#[test]
fn contradictions_are_errors() {
    for (text, needle) in [
        ("[Global]\npassword = x\n", "neither username nor user-id"),
        (
            "[Global]\napplication-credential-name = n\napplication-credential-secret = s\n",
            "owning user",
        ),
        (
            "[Global]\napplication-credential-id = i\n",
            "secret is missing",
        ),
        (
            "[Global]\napplication-credential-secret = s\n",
            "neither application-credential-id",
        ),
        ("[Global]\ntrustee-id = t\n", "together"),
        ("[Global]\ncert-file = /c\n", "together"),
        (
            "[LoadBalancer]\nmonitor-delay = 3s\nmonitor-timeout = 5s\n",
            "must not exceed",
        ),
        (
            "[LoadBalancer]\nlb-version = v1\nuse-octavia = yes\n",
            "contradicts",
        ),
    ] {
        let err = parse_err(text);
        assert!(
            matches!(err, ConfigError::Conflict { .. }),
            "{text}: {err:?}"
        );
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
}

#[test]
fn syntax_errors_carry_the_line() {
    for (text, line) in [
        ("auth-url = x\n", 1),
        ("[Global]\nauth-url = \"x\n", 2),
        ("[Global \"sub\"]\n", 1),
        ("[LoadBalancerClass]\n", 1),
        ("[Global]\n\n\nregion = a\\b\n", 4),
    ] {
        match parse_err(text) {
            ConfigError::Syntax { line: l, .. } => assert_eq!(l, line, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn unknown_sections_and_keys_are_warnings_naming_them() {
    let (cfg, warnings) = parse_ok(
        "[Global]\nauth_url = https://x/v3\nregion = R\n[LoadBalancer]\nuse-octavia = true\nfloating-network = f\n[Foo]\nbar = 1\n[Metadata]\nsearch-order = configDrive\n",
    );
    assert_eq!(cfg.global.auth_url, None, "auth_url is not auth-url");
    let rendered: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(rendered.len(), 4, "{rendered:#?}");
    assert!(
        rendered[0].starts_with("cloud.conf line 2: [Global] auth_url: unknown key"),
        "{}",
        rendered[0]
    );
    assert!(
        rendered[0].contains("did you mean \"auth-url\""),
        "{}",
        rendered[0]
    );
    assert!(
        rendered[1].contains("[LoadBalancer] floating-network: unknown key"),
        "{}",
        rendered[1]
    );
    assert!(
        rendered[1].contains("floating-network-id"),
        "{}",
        rendered[1]
    );
    assert!(
        rendered[2].contains("[Foo]: unknown section"),
        "{}",
        rendered[2]
    );
    assert!(rendered[3].contains("search-order"), "{}", rendered[3]);
}

#[test]
fn repeated_keys_last_wins_and_multi_valued_accumulate_or_reset() {
    let (cfg, warnings) = parse_ok(
        "[Global]\nregion = A\nregion = B\n[Networking]\npublic-network-name = a\npublic-network-name = b\n\
         public-network-name\npublic-network-name = c\n[global]\nREGION = C\n",
    );
    assert_eq!(
        cfg.global.region.as_deref(),
        Some("C"),
        "sections merge and the last value wins"
    );
    assert_eq!(
        cfg.networking.public_network_name,
        vec!["c"],
        "a bare multi-valued key resets it"
    );
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let (_, same) = parse_ok("[Global]\nregion = A\nregion = A\n");
    assert!(
        same.is_empty(),
        "repeating the same value is harmless: {same:?}"
    );
}

#[test]
fn comments_quotes_and_bare_booleans() {
    let (cfg, warnings) = parse_ok(
        "# full-line\n; also\n[Global] ; trailing after header\nregion = R1 # trailing\n\
         ca-file = \"/path with spaces/ca.pem\"\n[LoadBalancer]\ncreate-monitor\ninternal-lb = ON\nlb-provider = amph;ora\n",
    );
    assert_eq!(cfg.global.region.as_deref(), Some("R1"));
    assert_eq!(
        cfg.global.ca_file.as_deref(),
        Some("/path with spaces/ca.pem")
    );
    assert!(
        cfg.load_balancer.create_monitor,
        "a bare boolean key means true (gcfg)"
    );
    assert!(cfg.load_balancer.internal_lb);
    assert_eq!(cfg.load_balancer.lb_provider.as_deref(), Some("amph;ora"));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].message.contains("double quotes"));
}

#[test]
fn empty_values_keep_defaults() {
    let (cfg, _) =
        parse_ok("[Global]\nca-file =\n[LoadBalancer]\nmonitor-delay =\ncreate-monitor =\n");
    assert_eq!(cfg.global.ca_file, None);
    assert_eq!(cfg.load_balancer.monitor_delay, Duration::from_secs(5));
    assert!(!cfg.load_balancer.create_monitor);
    assert!(matches!(
        parse_err("[Global]\nregion\n"),
        ConfigError::InvalidValue { .. }
    ));
}

#[test]
fn generation_keys() {
    let gen = |text: &str| {
        let (cfg, _) = parse_ok(text);
        (cfg.load_balancer.lbaas, cfg.load_balancer.lbaas_exclude_v1)
    };
    assert_eq!(
        gen("[LoadBalancer]\nuse-octavia = false\n"),
        (Some(LbaasGeneration::NeutronV2), false)
    );
    assert_eq!(
        gen("[LoadBalancer]\nuse-octavia = false\nlb-version = v1\n"),
        (Some(LbaasGeneration::NeutronV1), false)
    );
    assert_eq!(
        gen("[LoadBalancer]\nlb-version = V2\nuse-octavia = yes\n"),
        (Some(LbaasGeneration::Octavia), false)
    );
    assert_eq!(gen("[LoadBalancer]\nlb-version = v2\n"), (None, true));
    assert_eq!(gen("[LoadBalancer]\n"), (None, false));
}

#[test]
fn credential_kinds() {
    let kind = |text: &str| parse_ok(text).0.global.credential_kind();
    let base = "[Global]\nauth-url = https://k/v3\n";
    assert_eq!(
        kind(&format!(
            "{base}username = u\npassword = p\nuser-domain-name = Default\n"
        )),
        Ok(CredentialKind::Password)
    );
    assert_eq!(
        kind(&format!("{base}user-id = u\npassword = p\n")),
        Ok(CredentialKind::Password)
    );
    assert_eq!(
        kind(&format!("{base}application-credential-name = n\napplication-credential-secret = s\nuser-id = u\n")),
        Ok(CredentialKind::ApplicationCredentialName)
    );
    assert_eq!(
        kind(&format!(
            "{base}trust-id = t\ntrustee-id = u\ntrustee-password = p\n"
        )),
        Ok(CredentialKind::Trustee)
    );
    // Without user-domain-*, Keystone's default domain is assumed, as the clients do.
    assert_eq!(
        kind(&format!("{base}username = u\npassword = p\n")),
        Ok(CredentialKind::Password)
    );
    let no_user = kind(&format!("{base}password = p\nuse-clouds = true\n"));
    assert!(
        matches!(&no_user, Err(ConfigError::NoCredentials(m)) if m.contains("neither username nor user-id"))
    );
    let no_url = kind("[Global]\nuser-id = u\npassword = p\n");
    assert!(matches!(&no_url, Err(ConfigError::NoCredentials(m)) if m.contains("auth-url")));
}

#[test]
fn secrets_never_reach_debug_or_errors() {
    let (cfg, _) = parse_ok(include_str!("fixtures/cloudconf/occm-password.conf"));
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("p@ss"), "{debug}");
    let (cfg, _) = parse_ok(include_str!(
        "fixtures/cloudconf/occm-application-credential.conf"
    ));
    let debug = format!("{cfg:?} {:#?}", cfg.global);
    assert!(!debug.contains("s3cr3t"), "{debug}");
    // A secret repeated, an invalid escape near it, a glued comment char: nothing echoes it.
    let (_, warnings) =
        parse_ok("[Global]\nuser-id = u\npassword = hunter2#x\npassword = hunter3\n");
    for w in &warnings {
        let text = w.to_string();
        assert!(!text.contains("hunter"), "{text}");
    }
    let err = parse_err("[Global]\npassword\n");
    assert!(err.to_string().contains("***"), "{err}");
    assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
    assert_eq!(format!("{}", Secret::new("hunter2")), "***");
}

//! `openstack-lb-controller demo`: the whole product on one machine, with no cloud. It starts
//! the sandbox (in this process), a real kube-apiserver + etcd (hack/control-plane.sh), three
//! Nodes with loopback addresses and a tiny HTTP "pod" behind each NodePort, the controller
//! (this same binary, `run`, as a child process), then applies the classic Magnum-guide nginx
//! Service and narrates the load balancer being built until its external IP answers.
//! Wiring only: every decision is the controller's; this module just watches and reports.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use controller::kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use controller::kube::config::{KubeConfigOptions, Kubeconfig};
use controller::kube::Client;
use k8s_openapi::api::core::v1::{Node, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const SERVICE_NAME: &str = "nginxservice";
const NAMESPACE: &str = "default";
/// Every wait of the demo is bounded by this.
const STAGE_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Tear everything down as soon as the Service answers, instead of waiting for Ctrl-C.
    #[arg(long)]
    once: bool,
    /// Number of Nodes (each gets a loopback address 127.100.0.1N and an HTTP backend).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    nodes: u8,
    /// How long the sandbox keeps load-balancer objects PENDING_* after each change.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    provisioning_delay: Duration,
    /// Where the demo keeps its files (kubeconfig, cloud.conf, logs); default: a new temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    model::config::values::parse_duration(s)
        .ok_or_else(|| format!("invalid duration {s:?}: use e.g. 500ms, 2s, 1m"))
}

/// Prints one progress line with the time since the demo started.
struct Narrator {
    start: Instant,
}

impl Narrator {
    fn say(&self, stage: &str, text: impl AsRef<str>) {
        println!(
            "[{:>5.1}s] {stage:<14} {}",
            self.start.elapsed().as_secs_f64(),
            text.as_ref()
        );
    }
}

/// Everything the demo started, so that teardown stops exactly that, whatever failed.
struct Started {
    dir: PathBuf,
    repo: PathBuf,
    sandbox: Option<sandbox::SandboxHandle>,
    control_plane: bool,
    controller: Option<tokio::process::Child>,
    backends: JoinSet<()>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let narrator = Narrator {
        start: Instant::now(),
    };
    let repo = find_repo()?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("olbc-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut started = Started {
        dir: dir.clone(),
        repo,
        sandbox: None,
        control_plane: false,
        controller: None,
        backends: JoinSet::new(),
    };
    let outcome = demo(&args, &narrator, &mut started).await;
    if let Err(err) = &outcome {
        println!("\ndemo failed: {err:#}");
        println!("files and logs are kept in {}", dir.display());
    }
    teardown(&narrator, &mut started, outcome.is_ok()).await;
    outcome.map(|_| ExitCode::SUCCESS)
}

async fn demo(args: &Args, n: &Narrator, s: &mut Started) -> anyhow::Result<()> {
    // 1. The cloud.
    let cfg = sandbox::SandboxConfig {
        provisioning_delay: args.provisioning_delay,
        ..Default::default()
    };
    let handle = sandbox::start(cfg).await.context("starting the sandbox")?;
    n.say(
        "sandbox",
        format!(
            "Keystone {}  Neutron {}  Octavia {}",
            handle.auth_url(),
            handle.neutron_url(),
            handle.octavia_url()
        ),
    );
    n.say(
        "sandbox",
        format!("floating IPs from {}", handle.floating_range_text()),
    );
    let cloud_conf = s.dir.join("cloud.conf");
    std::fs::write(&cloud_conf, handle.cloud_conf()).context("writing cloud.conf")?;
    std::fs::write(s.dir.join("openrc"), handle.openrc()).context("writing openrc")?;
    std::fs::write(s.dir.join("clouds.yaml"), handle.clouds_yaml())
        .context("writing clouds.yaml")?;
    let admin_url = handle.admin_url().to_string();
    s.sandbox = Some(handle);

    // 2. Kubernetes.
    n.say("kubernetes", "starting etcd + kube-apiserver on 127.0.0.1");
    let cp_dir = s.dir.join("control-plane");
    let status = tokio::process::Command::new(s.repo.join("hack/control-plane.sh"))
        .arg("start")
        .arg("--dir")
        .arg(&cp_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .await
        .context("running hack/control-plane.sh")?;
    s.control_plane = true;
    if !status.success() {
        bail!(
            "hack/control-plane.sh start failed ({status}); see {}",
            cp_dir.display()
        );
    }
    let kubeconfig = cp_dir.join("kubeconfig");
    let client = kube_client(&kubeconfig).await?;
    n.say(
        "kubernetes",
        format!("ready; export KUBECONFIG={}", kubeconfig.display()),
    );

    // 3. Nodes: Kubernetes objects with loopback InternalIPs, and their ports in Neutron (a
    //    real cloud has them: the controller finds the VIP subnet through them).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building an HTTP client")?;
    let mut node_ips = Vec::new();
    for i in 1..=args.nodes {
        let name = format!("demo-node-{i}");
        let ip = Ipv4Addr::new(127, 100, 0, 10 + i);
        http.post(format!("{admin_url}/nodes"))
            .json(&serde_json::json!({"name": name, "ip_address": ip.to_string()}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("registering the Neutron port of {name}"))?;
        create_node(&client, &name, ip).await?;
        node_ips.push((name, ip));
    }
    n.say(
        "nodes",
        node_ips
            .iter()
            .map(|(name, ip)| format!("{name} {ip}"))
            .collect::<Vec<_>>()
            .join(", ")
            + " (Ready)",
    );

    // 4. The controller, as in production: its own process with a kubeconfig and a cloud.conf.
    let metrics_addr = free_local_addr()?;
    let health_addr = free_local_addr()?;
    let log_path = s.dir.join("controller.log");
    let log = std::fs::File::create(&log_path).context("creating controller.log")?;
    let exe = std::env::current_exe().context("locating this binary")?;
    let child = tokio::process::Command::new(exe)
        .arg("run")
        .arg("--cloud-config")
        .arg(&cloud_conf)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--metrics-addr")
        .arg(metrics_addr.to_string())
        .arg("--health-addr")
        .arg(health_addr.to_string())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting the controller")?;
    n.say(
        "controller",
        format!(
            "running (pid {}), logs {}",
            child.id().unwrap_or_default(),
            log_path.display()
        ),
    );
    s.controller = Some(child);

    // 5. The Service of the classic Magnum guide, and a "pod" behind each NodePort. The
    //    nodePort is one this demo could bind on every node address, so that another demo
    //    on the machine (same node addresses) can never answer for this one.
    let (node_port, backends) = bind_backends(&node_ips)?;
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE_NAME, "labels": {"app": "nginx"}},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "nginx"},
            "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP", "nodePort": node_port}]
        }
    }))?;
    let svc = services
        .create(&PostParams::default(), &svc)
        .await
        .context("creating the Service")?;
    let given = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .and_then(|p| p.node_port);
    if given != Some(i32::from(node_port)) {
        bail!("the apiserver did not keep nodePort {node_port} (got {given:?})");
    }
    n.say(
        "service",
        format!("{NAMESPACE}/{SERVICE_NAME} applied: port 80 -> nodePort {node_port}"),
    );
    for ((name, ip), listener) in node_ips.iter().zip(backends) {
        listener
            .set_nonblocking(true)
            .context("preparing a backend listener")?;
        let listener = TcpListener::from_std(listener)
            .with_context(|| format!("serving the backend of {name} on {ip}:{node_port}"))?;
        s.backends.spawn(serve_backend(
            listener,
            format!("{name} ({ip}:{node_port})"),
        ));
    }
    n.say(
        "pods",
        format!(
            "{} HTTP backends answering on <node>:{node_port}",
            node_ips.len()
        ),
    );

    // 6. Watch it being built.
    let session = sandbox_session(s).await?;
    let external_ip = watch_build(n, &services, &session).await?;

    // 7. What a user sees.
    println!();
    kubectl(&kubeconfig, &["get", "svc", SERVICE_NAME, "-o", "wide"]).await;
    println!();
    for _ in 0..2 {
        println!("$ curl http://{external_ip}/");
        match http_get(&http, &format!("{external_ip}:80")).await {
            Ok(body) => println!("{}", body.trim_end()),
            Err(err) => bail!("the external IP did not answer: {err:#}"),
        }
    }
    println!();
    print_next_steps(s, &kubeconfig, &metrics_addr);
    if !args.once {
        println!("Press Ctrl-C to tear everything down.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        println!();
    }

    // 8. The way back: deleting the Service removes the load balancer and its floating IP.
    services
        .delete(SERVICE_NAME, &DeleteParams::default())
        .await
        .context("deleting the Service")?;
    n.say("service", "deleted; waiting for the controller to clean up");
    wait_cleanup(n, &services, &session).await
}

/// Polls the cloud and the Service and prints a line each time a stage is reached.
async fn watch_build(
    n: &Narrator,
    services: &Api<Service>,
    session: &openstack::Session,
) -> anyhow::Result<String> {
    let lb_name = format!("kube_service_kubernetes_{NAMESPACE}_{SERVICE_NAME}");
    let octavia = openstack::LbaasV2::octavia(session).await?;
    let neutron = openstack::Neutron::new(session).await?;
    let deadline = Instant::now() + STAGE_TIMEOUT;
    let mut last_lb_state = String::new();
    let mut fip_seen = false;
    loop {
        if Instant::now() > deadline {
            bail!("no external IP after {}s; see the controller log and `kubectl describe svc {SERVICE_NAME}`", STAGE_TIMEOUT.as_secs());
        }
        let lbs = octavia
            .list_loadbalancers(&openstack::ListQuery::new().name(&lb_name))
            .await?;
        if let Some(lb) = lbs.first() {
            if lb.provisioning_status != last_lb_state {
                n.say(
                    "load balancer",
                    format!(
                        "{} {} (VIP {})",
                        lb.name, lb.provisioning_status, lb.vip_address
                    ),
                );
                last_lb_state = lb.provisioning_status.clone();
            }
            if !fip_seen && !lb.vip_port_id.is_empty() {
                let fips = neutron
                    .list_floating_ips(&openstack::ListQuery::new().port_id(&lb.vip_port_id))
                    .await?;
                if let Some(fip) = fips.first() {
                    n.say(
                        "floating ip",
                        format!(
                            "{} attached to VIP port {}",
                            fip.floating_ip_address, lb.vip_port_id
                        ),
                    );
                    fip_seen = true;
                }
            }
        }
        let svc = services.get(SERVICE_NAME).await?;
        let ingress_ip = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .and_then(|i| i.first())
            .and_then(|i| i.ip.clone());
        if let Some(ip) = ingress_ip {
            n.say(
                "status",
                format!("status.loadBalancer.ingress = {ip} (EXTERNAL-IP)"),
            );
            return Ok(ip);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_cleanup(
    n: &Narrator,
    services: &Api<Service>,
    session: &openstack::Session,
) -> anyhow::Result<()> {
    let lb_name = format!("kube_service_kubernetes_{NAMESPACE}_{SERVICE_NAME}");
    let octavia = openstack::LbaasV2::octavia(session).await?;
    let deadline = Instant::now() + STAGE_TIMEOUT;
    let mut svc_gone = false;
    loop {
        if Instant::now() > deadline {
            bail!("cleanup did not finish in {}s", STAGE_TIMEOUT.as_secs());
        }
        if !svc_gone && services.get_opt(SERVICE_NAME).await?.is_none() {
            n.say("service", "finalizer removed, Service gone");
            svc_gone = true;
        }
        let lbs = octavia
            .list_loadbalancers(&openstack::ListQuery::new().name(&lb_name))
            .await?;
        if svc_gone && lbs.is_empty() {
            n.say("load balancer", "deleted, floating IP released");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn teardown(n: &Narrator, s: &mut Started, ok: bool) {
    if let Some(mut child) = s.controller.take() {
        let _ = child.kill().await;
        n.say("controller", "stopped");
    }
    s.backends.shutdown().await;
    if s.control_plane {
        let _ = tokio::process::Command::new(s.repo.join("hack/control-plane.sh"))
            .arg("stop")
            .arg("--dir")
            .arg(s.dir.join("control-plane"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        n.say("kubernetes", "stopped");
    }
    if let Some(handle) = s.sandbox.take() {
        handle.shutdown().await;
        n.say("sandbox", "stopped");
    }
    if ok {
        let _ = std::fs::remove_dir_all(&s.dir);
    }
}

fn print_next_steps(s: &Started, kubeconfig: &Path, metrics: &SocketAddr) {
    let repo = s.repo.display();
    println!("Try next (in another terminal):");
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!(
        "  source {}/openrc                    # the sandbox's OS_* variables",
        s.dir.display()
    );
    println!("  kubectl describe svc {SERVICE_NAME}                  # Events and the LoadBalancerReady condition");
    println!("  kubectl patch svc {SERVICE_NAME} --type=json -p '[{{\"op\":\"add\",\"path\":\"/spec/ports/-\",\"value\":{{\"name\":\"alt\",\"port\":8080,\"targetPort\":80}}}}]'   # add a port");
    println!("  kubectl label node demo-node-1 node.kubernetes.io/exclude-from-external-load-balancers=true   # drop a member");
    println!("  kubectl delete svc {SERVICE_NAME}                    # LB and floating IP go away");
    println!("  curl -s http://{metrics}/metrics | grep -v '^#'   # the controller's metrics");
    println!(
        "  {repo}/target/debug/openstack-lb-controller doctor --cloud-config {}/cloud.conf",
        s.dir.display()
    );
}

/// The repository root: where hack/control-plane.sh is (from the current dir, or this binary's).
fn find_repo() -> anyhow::Result<PathBuf> {
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    for start in starts {
        for dir in start.ancestors() {
            if dir.join("hack/control-plane.sh").is_file() {
                return Ok(dir.to_path_buf());
            }
        }
    }
    bail!("cannot find hack/control-plane.sh: run the demo from the repository (./scripts/demo.sh)")
}

async fn kube_client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config =
        controller::kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .context("loading the kubeconfig")?;
    Client::try_from(config).context("building the Kubernetes client")
}

/// A Node as a kubelet would register it: InternalIP on loopback, Ready.
async fn create_node(client: &Client, name: &str, ip: Ipv4Addr) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }))?;
    nodes
        .create(&PostParams::default(), &node)
        .await
        .with_context(|| format!("creating Node {name}"))?;
    let status = serde_json::json!({
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip.to_string()},
                {"type": "Hostname", "address": name}
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "demo node", "lastHeartbeatTime": chrono_now(), "lastTransitionTime": chrono_now()
            }]
        }
    });
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .with_context(|| format!("marking Node {name} Ready"))?;
    Ok(())
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A nodePort in the apiserver's default range (30000-32767) that is free on every node
/// address, with the bound listeners: holding them from the start means no other process
/// can take the port between the choice and the serving.
fn bind_backends(
    node_ips: &[(String, Ipv4Addr)],
) -> anyhow::Result<(u16, Vec<std::net::TcpListener>)> {
    // Start from a per-process offset so that demos started together try different ports.
    let start = (std::process::id() as u16).wrapping_mul(7919) % 2768;
    for i in 0..2768u16 {
        let port = 30000 + (start + i) % 2768;
        let bound: Result<Vec<_>, _> = node_ips
            .iter()
            .map(|(_, ip)| std::net::TcpListener::bind(SocketAddr::from((*ip, port))))
            .collect();
        if let Ok(listeners) = bound {
            return Ok((port, listeners));
        }
    }
    bail!("no port in 30000-32767 is free on every node address")
}

/// A "pod": answers every HTTP request with its node's name and address (which includes
/// the nodePort, so each demo's answers are its own).
async fn serve_backend(listener: TcpListener, node: String) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        let node = node.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            // One read is enough for the small GETs of curl and the health checks.
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
            let body = format!("hello from nginx on {node}\n");
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// What `curl http://addr/` prints.
async fn http_get(http: &reqwest::Client, addr: &str) -> anyhow::Result<String> {
    let resp = http
        .get(format!("http://{addr}/"))
        .send()
        .await?
        .error_for_status()?;
    Ok(resp.text().await?)
}

async fn kubectl(kubeconfig: &Path, args: &[&str]) {
    println!("$ kubectl {}", args.join(" "));
    let out = tokio::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stderr(Stdio::null())
        .output()
        .await;
    match out {
        Ok(o) => print!("{}", String::from_utf8_lossy(&o.stdout)),
        Err(_) => println!("(kubectl is not installed)"),
    }
}

fn free_local_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?)
}

async fn sandbox_session(s: &Started) -> anyhow::Result<openstack::Session> {
    let text = std::fs::read_to_string(s.dir.join("cloud.conf"))?;
    let (cfg, _) = model::config::CloudConfig::parse(&text)?;
    let session = openstack::Session::new(
        &cfg.global,
        &cfg.metadata,
        openstack::SessionOptions::default(),
    )
    .await?;
    Ok(session)
}

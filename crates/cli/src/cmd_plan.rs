//! `openstack-lb-controller plan` (SPEC §6): what the controller would create, change or
//! delete in OpenStack for one Service right now, changing nothing. It gathers the inputs
//! (the Service file, Nodes from a file or the cluster, cloud.conf, the cloud's features and
//! what exists, observed through the controller's own `OpenStackCloud`), hands them to the
//! pure `model::desired` / `model::plan` / `model::plan_delete`, and prints the result through
//! [`render`]. Must not decide anything itself and must never call a mutating API.

#[path = "plan/render.rs"]
mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use controller::cloud::openstack::OpenStackCloud;
use controller::cloud::{Cloud, Lookup};
use controller::connect::{Refused, SwitchedOff};
use controller::kube::api::{Api, ListParams};
use controller::kube::config::{KubeConfigOptions, Kubeconfig};
use controller::kube::{Client, Config};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::serde::Deserialize as _;
use model::annotations::{self as ann, Annotations};
use model::config::CloudConfig;
use model::spec::FipIntent;
use model::{CloudFeatures, DeleteIntent, Environment, Observed, Plan};
use openstack::{RetryPolicy, SessionOptions};
use serde_json::Value;

use render::{Outcome, Report, StatusPreview};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Service manifest (YAML or JSON), as `kubectl get svc NAME -o yaml` prints it or as
    /// it would be applied.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// cloud.conf (OCCM / in-tree / Magnum format), the one the controller runs with.
    #[arg(long, value_name = "FILE", env = "OLBC_CLOUD_CONFIG")]
    pub cloud_config: PathBuf,
    /// Cloud of clouds.yaml that fills what cloud.conf leaves empty (implies use-clouds).
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,
    /// Nodes as YAML/JSON: a list (`kubectl get nodes -o yaml`), a bare sequence or several
    /// `---` documents. Without it and without --kubeconfig the plan has no members.
    #[arg(long, value_name = "FILE", conflicts_with = "kubeconfig")]
    pub nodes: Option<PathBuf>,
    /// Read the Nodes and the cluster identity (kube-system UID) from this cluster.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Cluster name used in load-balancer names, as given to `run`.
    #[arg(long, default_value = "kubernetes")]
    pub cluster_name: String,
    /// The cluster identity: UID of the kube-system namespace
    /// (`kubectl get ns kube-system -o jsonpath='{.metadata.uid}'`). Read from the cluster
    /// when --kubeconfig is given.
    #[arg(long, value_name = "UID", required_unless_present = "kubeconfig")]
    pub cluster_id: Option<String>,
    /// The controller's --load-balancer-class (default: only Services without a class).
    #[arg(long)]
    pub load_balancer_class: Option<String>,
    /// Plan the deletion of the Service's load balancer instead (as on `kubectl delete svc`).
    #[arg(long)]
    pub delete: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// Exit code of a Service that cannot be served as written.
const EXIT_INVALID: u8 = 2;

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let service = match read_service(&args.file) {
        Ok(s) => s,
        Err(problem) => {
            let report = Report::unreadable(&args.file, &problem);
            print(&report, args.output)?;
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let meta = ServiceMeta::of(&service);
    let service: Service = match serde_json::from_value(service) {
        Ok(s) => s,
        Err(e) => {
            let problem = format!("{}: not a Service: {e}", args.file.display());
            print(&Report::unreadable(&args.file, &problem), args.output)?;
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    // Annotation syntax needs no cloud: report it before asking for credentials, so a typo is
    // found even where the cloud is unreachable.
    if !args.delete {
        if let Err(invalid) = Annotations::parse(&meta.annotations) {
            let report = Report::invalid(&meta.key(), &service, invalid);
            print(&report, args.output)?;
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    }
    let loaded = crate::cloud_config::load(&args.cloud_config, args.cloud.as_deref())
        .map_err(anyhow::Error::msg)?;
    for w in &loaded.warnings {
        eprintln!("warning: {}: {w}", args.cloud_config.display());
    }
    // The controller's own start-up decision, worded for a command line.
    let config = controller::connect::enabled(Some(loaded.config)).map_err(|off| match off {
        SwitchedOff::Disabled => anyhow!("[LoadBalancer] enabled = false in {}: the controller creates nothing for any Service (it records a LoadBalancerDisabled Warning Event); set enabled = true", args.cloud_config.display()),
        SwitchedOff::NoCredentials(e) => anyhow!(
            "no usable credentials in {}: {e}",
            args.cloud_config.display()
        ),
        other => anyhow!("{other}"),
    })?;
    let kube = match &args.kubeconfig {
        Some(path) => Some(kube_client(path).await?),
        None => None,
    };
    let nodes = match (&args.nodes, &kube) {
        (Some(path), _) => read_nodes(path)?,
        (None, Some(client)) => cluster_nodes(client).await?,
        (None, None) => Vec::new(),
    };
    let cluster_uid = match (&args.cluster_id, &kube) {
        (Some(uid), _) => uid.clone(),
        (None, Some(client)) => controller::runner::cluster_uid(client)
            .await
            .context("cannot read the kube-system namespace (the cluster identity)")?,
        (None, None) => bail!("pass --cluster-id or --kubeconfig"),
    };

    let cloud = connect(&config, &args.cluster_name, &cluster_uid, &nodes).await?;
    let report = evaluate(&args, &meta, service, nodes, &config, &cloud).await?;
    print(&report, args.output)?;
    Ok(match report.outcome {
        Outcome::Invalid { .. } => ExitCode::from(EXIT_INVALID),
        _ => ExitCode::SUCCESS,
    })
}

fn print(report: &Report, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Text => print!("{}", render::text(report)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&render::json(report))?),
    }
    Ok(())
}

/// What this module reads from the Service itself.
struct ServiceMeta {
    namespace: String,
    name: String,
    annotations: BTreeMap<String, String>,
    /// `spec.type` (Kubernetes' default: ClusterIP).
    type_: String,
    class: Option<String>,
}

impl ServiceMeta {
    fn of(service: &Value) -> Self {
        let meta = &service["metadata"];
        let annotations = meta["annotations"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        ServiceMeta {
            namespace: meta["namespace"].as_str().unwrap_or("default").to_string(),
            name: meta["name"].as_str().unwrap_or_default().to_string(),
            annotations,
            type_: service["spec"]["type"]
                .as_str()
                .unwrap_or("ClusterIP")
                .to_string(),
            class: service["spec"]["loadBalancerClass"]
                .as_str()
                .map(str::to_string),
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// YAML or JSON (JSON is YAML) into JSON values, one per document.
fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| e.to_string())?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The one Service of the file; the problem otherwise, for an exit code 2.
fn read_service(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let docs = documents(&text).map_err(|e| format!("{}: not YAML: {e}", path.display()))?;
    let mut services: Vec<Value> = docs
        .into_iter()
        .filter(|d| d["kind"].as_str().is_none_or(|k| k == "Service"))
        .collect();
    match services.len() {
        1 => Ok(services.remove(0)),
        0 => Err(format!("{}: no Service in the file", path.display())),
        n => Err(format!(
            "{}: {n} Services in the file; plan one at a time",
            path.display()
        )),
    }
}

fn read_nodes(path: &Path) -> anyhow::Result<Vec<Node>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let docs = documents(&text).map_err(|e| anyhow!("{}: not YAML: {e}", path.display()))?;
    let mut nodes = Vec::new();
    for doc in docs {
        match doc {
            Value::Array(items) => nodes.extend(items),
            Value::Object(ref o) if o.get("items").is_some_and(Value::is_array) => {
                if let Some(Value::Array(items)) = o.get("items") {
                    nodes.extend(items.iter().cloned());
                }
            }
            other => nodes.push(other),
        }
    }
    if let Some(bad) = nodes
        .iter()
        .find(|n| n["kind"].as_str().is_some_and(|k| k != "Node"))
    {
        bail!(
            "{}: expected Nodes, found a {}",
            path.display(),
            bad["kind"].as_str().unwrap_or_default()
        );
    }
    nodes
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            serde_json::from_value(n)
                .map_err(|e| anyhow!("{}: item {i} is not a Node: {e}", path.display()))
        })
        .collect()
}

async fn kube_client(path: &Path) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("invalid kubeconfig {}", path.display()))?;
    Client::try_from(config).context("cannot build the Kubernetes client")
}

async fn cluster_nodes(client: &Client) -> anyhow::Result<Vec<Node>> {
    let list = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("cannot list Nodes")?;
    Ok(list.items)
}

/// The cloud as the controller sees it at start-up.
struct Connection {
    cloud: OpenStackCloud,
    features: CloudFeatures,
    env: Environment,
    generation: &'static str,
}

/// Authenticate, detect the LBaaS generation and discover the environment the way `run`
/// does (through the same `controller::connect::open`), but with Nodes that need not come from
/// a cluster. Read-only: GETs only.
async fn connect(
    config: &CloudConfig,
    cluster_name: &str,
    cluster_uid: &str,
    nodes: &[Node],
) -> anyhow::Result<Connection> {
    // A plan is interactive: fail fast rather than retry patiently.
    let options = SessionOptions {
        retry: RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        },
        ..SessionOptions::default()
    };
    let opened = controller::connect::open(config, options, 0)
        .await
        .map_err(|e| match e {
            Refused::Authentication(_) => {
                anyhow!("{e} (check it with `openstack-lb-controller doctor`)")
            }
            e => anyhow::Error::new(e),
        })?;
    let features = opened.features().clone();
    let mut env = Environment::new(cluster_name, cluster_uid);
    env.project_id = opened.project_id.clone();
    if let Some((what, e)) =
        controller::discovery::discover(config, &opened.neutron, nodes, &mut env)
            .await
            .into_iter()
            .next()
    {
        return Err(anyhow::Error::new(e).context(what));
    }
    Ok(Connection {
        cloud: opened.cloud,
        generation: features.generation.label(),
        features,
        env,
    })
}

/// Runs the controller's decision for this Service: ignore, delete, or ensure.
async fn evaluate(
    args: &Args,
    meta: &ServiceMeta,
    service: Service,
    nodes: Vec<Node>,
    config: &CloudConfig,
    conn: &Connection,
) -> anyhow::Result<Report> {
    let managed = controller::status::is_managed(&service, args.load_balancer_class.as_deref());
    let finalizer = controller::status::has_finalizer(&service);
    let mut report = Report::new(meta.key(), conn.generation, &conn.features, &conn.env);

    if args.delete || !managed {
        if !args.delete && !finalizer {
            report.outcome = Outcome::Ignored {
                why: ignored_why(meta, args),
            };
            return Ok(report);
        }
        let intent = DeleteIntent::for_service(&service, config, &conn.features, &conn.env);
        let lookup = Lookup {
            lb_name: intent.lb_name.clone(),
            lb_id: lb_id_annotation(meta),
            fip_description: intent.fip_description.clone(),
            fip_address: None,
            security_group: config
                .load_balancer
                .manage_security_groups
                .then(|| model::naming::security_group_name(&intent.lb_name)),
        };
        report.lb_name = intent.lb_name.clone();
        let observed = observe(conn, &lookup).await?;
        let plan = model::plan_delete(&intent, &observed);
        report.observed = Some(observed);
        report.outcome = Outcome::Delete {
            reason: if args.delete {
                "as if the Service were deleted (--delete)".to_string()
            } else {
                "the Service is no longer handled by this controller but still carries its finalizer".to_string()
            },
        };
        report.status = Some(StatusPreview::after_delete(&service, &plan, args.delete));
        report.plan = Some(plan);
        return Ok(report);
    }

    let spec = match model::desired(&service, &nodes, config, &conn.features, &conn.env) {
        Ok(spec) => spec,
        Err(invalid) => {
            report.status = Some(StatusPreview::invalid(&service, &invalid));
            report.outcome = Outcome::Invalid { problems: invalid };
            return Ok(report);
        }
    };
    report.lb_name = spec.name.clone();
    let lookup = Lookup {
        lb_name: spec.name.clone(),
        lb_id: spec
            .existing_lb_id
            .clone()
            .or_else(|| lb_id_annotation(meta)),
        fip_description: spec.fip_description.clone(),
        fip_address: match &spec.floating_ip {
            FipIntent::ByAddress { address, .. } => Some(address.to_string()),
            _ => None,
        },
        security_group: spec.security_group.as_ref().map(|g| g.name.clone()),
    };
    let observed = observe(conn, &lookup).await?;
    let plan = model::plan(&spec, &observed);
    report.observed = Some(observed);
    if !plan.invalid.is_empty() {
        report.status = Some(StatusPreview::invalid(&service, &plan.invalid));
        report.outcome = Outcome::Invalid {
            problems: plan.invalid.clone(),
        };
        report.plan = Some(plan);
        return Ok(report);
    }
    report.outcome = Outcome::Ensure;
    report.status = Some(StatusPreview::after_ensure(
        &service,
        &plan,
        &notices(&spec.warnings, &plan),
    ));
    report.plan = Some(plan);
    Ok(report)
}

fn ignored_why(meta: &ServiceMeta, args: &Args) -> String {
    if meta.type_ != "LoadBalancer" {
        return format!("spec.type is {}, not LoadBalancer, and the Service carries no load-balancer-cleanup finalizer: nothing exists to clean up", meta.type_);
    }
    match (&meta.class, &args.load_balancer_class) {
        (Some(theirs), Some(ours)) => format!(
            "spec.loadBalancerClass is {theirs:?}; this controller handles {ours:?} and Services without a class"
        ),
        (Some(theirs), None) => format!(
            "spec.loadBalancerClass is {theirs:?}; without --load-balancer-class the controller handles only Services without a class"
        ),
        _ => "the Service is not handled by this controller".to_string(),
    }
}

fn lb_id_annotation(meta: &ServiceMeta) -> Option<String> {
    meta.annotations
        .get(ann::LOAD_BALANCER_ID)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

async fn observe(conn: &Connection, lookup: &Lookup) -> anyhow::Result<Observed> {
    conn.cloud
        .observe(lookup)
        .await
        .map_err(|e| anyhow!("cannot read what exists in the cloud: {e}"))
}

/// Whether any step creates a load balancer (for the condition message): Octavia's LB POST,
/// or on LBaaS v1 the pool POST (as the controller counts it).
pub(crate) fn creates_lb(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| s.step.creates_load_balancer())
}

use controller::planner::notices;
pub(crate) use controller::planner::published;

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Gate, PlannedStep, Step};

    fn plan_of(step: Step) -> Plan {
        Plan {
            steps: vec![PlannedStep {
                gate: Gate::Now,
                step,
            }],
            ..Plan::default()
        }
    }

    #[test]
    fn a_v1_pool_create_is_creating_the_load_balancer() {
        assert!(creates_lb(&plan_of(Step::CreateV1Pool {
            name: "kube_service_kubernetes_shop_web".into(),
            description: String::new(),
            subnet_id: "subnet-1".into(),
            protocol: "TCP".into(),
            lb_method: "ROUND_ROBIN".into(),
        })));
        assert!(!creates_lb(&plan_of(Step::UpdateV1Pool {
            pool: "pool-1".into(),
            lb_method: "SOURCE_IP".into(),
        })));
        assert!(!creates_lb(&plan_of(Step::DeleteFloatingIp {
            fip: "f-1".into()
        })));
        assert!(!creates_lb(&Plan::default()));
    }

    #[test]
    fn a_tag_step_shows_as_the_tag_put() {
        let step = Step::TagFloatingIp {
            fip: "f-1".into(),
            tag: "kube-cluster-uid=u-1".into(),
        };
        let call = render::api_call(&step, None);
        assert_eq!(
            (call.method, call.path.as_str()),
            ("PUT", "/v2.0/floatingips/f-1/tags/kube-cluster-uid=u-1")
        );
        assert!(call.fields.is_empty() && call.then.is_none());
        assert_eq!(render::title(&step), "tag floating ip f-1");
        assert!(!creates_lb(&plan_of(step)));
    }
}

//! Reading cloud.conf (and clouds.yaml when it is asked for) from disk, the same way for every
//! subcommand: `run`, `doctor` and `plan` must agree on what a file means. Parsing and
//! validation are `model::config`'s; this module only finds and reads the files.

use std::path::{Path, PathBuf};

use model::config::{
    clouds_yaml_candidates, fill_from_clouds, CloudConfig, CloudsYaml, ConfigWarning,
};

/// Where `[Global]` values came from when clouds.yaml filled them.
pub struct CloudsSource {
    pub path: PathBuf,
    pub cloud: String,
    /// The keys clouds.yaml filled (cloud.conf had left them empty).
    pub filled: Vec<String>,
}

pub struct Loaded {
    pub config: CloudConfig,
    pub warnings: Vec<ConfigWarning>,
    pub clouds: Option<CloudsSource>,
}

/// Reads `path`, then fills `[Global]` from clouds.yaml when `use-clouds` is set or a cloud is
/// named (`cloud` from the command line, else `[Global] cloud`, else `OS_CLOUD`). Errors are
/// operator-facing messages naming the file.
pub fn load(path: &Path, cloud: Option<&str>) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (mut config, warnings) =
        CloudConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut clouds = None;
    if config.global.use_clouds || cloud.is_some() {
        let cloud = cloud
            .map(str::to_string)
            .or_else(|| config.global.cloud.clone())
            .or_else(|| std::env::var("OS_CLOUD").ok().filter(|c| !c.is_empty()))
            .ok_or("clouds.yaml is used but no cloud is named: pass --cloud, set [Global] cloud or OS_CLOUD")?;
        let env_file = std::env::var("OS_CLIENT_CONFIG_FILE").ok();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let candidates = clouds_yaml_candidates(
            config.global.clouds_file.as_deref(),
            env_file.as_deref(),
            home.as_deref(),
        );
        let file = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            format!(
                "no clouds.yaml found; looked in: {}",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let yaml = CloudsYaml::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let filled = fill_from_clouds(&mut config.global, &yaml, &cloud)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        clouds = Some(CloudsSource {
            path: file.clone(),
            cloud,
            filled: filled.into_iter().map(str::to_string).collect(),
        });
    }
    Ok(Loaded {
        config,
        warnings,
        clouds,
    })
}

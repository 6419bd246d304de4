//! Placement extras the cloud may lack (SPEC §1.2): a flavor (Octavia 2.6) and an
//! availability zone (2.14). Where the cloud has no such thing the setting is skipped with a
//! Warning, never sent.

use super::service::Ctx;
use super::Findings;
use crate::features::CloudFeatures;
use crate::invalid::Warning;

/// `(flavor_id, availability_zone)`: annotation, else `[LoadBalancer]`.
pub(super) fn placement(cx: &Ctx, f: &mut Findings) -> (Option<String>, Option<String>) {
    let (a, lbc, features) = (&cx.a, cx.lbc, cx.features);
    let flavor_id = gated(
        a.flavor_id.clone().or_else(|| lbc.flavor_id.clone()),
        features.flavors,
        "flavor-id",
        "Octavia API 2.6",
        features,
        &mut f.warnings,
    );
    let availability_zone = gated(
        a.availability_zone
            .clone()
            .or_else(|| lbc.availability_zone.clone()),
        features.availability_zones,
        "availability-zone",
        "Octavia API 2.14",
        features,
        &mut f.warnings,
    );
    (flavor_id, availability_zone)
}

fn gated(
    value: Option<String>,
    available: bool,
    setting: &str,
    needs: &str,
    features: &CloudFeatures,
    warnings: &mut Vec<Warning>,
) -> Option<String> {
    match value {
        Some(v) if !available => {
            warnings.push(Warning::unsupported(
                &format!("{setting} {v}"),
                needs,
                &features.version_text(),
            ));
            None
        }
        other => other,
    }
}

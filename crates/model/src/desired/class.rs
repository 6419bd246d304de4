//! The load-balancer class (SPEC §2.1 `[LoadBalancerClass "name"]`) and where each placement
//! setting comes from: annotation > class > `[LoadBalancer]`. An unknown class is an error,
//! not a silent fallback to the defaults.

use super::service::Ctx;
use super::Findings;
use crate::annotations as ann;
use crate::config::Placement;
use crate::invalid::Invalid;

/// The placement settings in force for the Service, in order of precedence.
pub(super) struct Placements<'a> {
    class: Option<Placement>,
    config: &'a Placement,
}

impl Placements<'_> {
    /// The annotation's value, else the class's, else `[LoadBalancer]`'s.
    pub fn pick(
        &self,
        annotation: &Option<String>,
        field: fn(&Placement) -> &Option<String>,
    ) -> Option<String> {
        annotation
            .clone()
            .or_else(|| self.class.as_ref().and_then(|c| field(c).clone()))
            .or_else(|| field(self.config).clone())
    }

    /// `floating-subnet-tags`: an empty list in a class does not override `[LoadBalancer]`.
    pub fn floating_subnet_tags(&self, annotation: &Option<Vec<String>>) -> Vec<String> {
        annotation
            .clone()
            .or_else(|| {
                self.class
                    .as_ref()
                    .map(|c| c.floating_subnet_tags.clone())
                    .filter(|t| !t.is_empty())
            })
            .unwrap_or_else(|| self.config.floating_subnet_tags.clone())
    }
}

pub(super) fn resolve<'a>(cx: &Ctx<'a>, f: &mut Findings) -> Placements<'a> {
    let class = match &cx.a.class {
        Some(name) => match cx.config.class(name) {
            Some(c) => Some(c.placement.clone()),
            None => {
                let known: Vec<&str> = cx.config.classes.iter().map(|c| c.name.as_str()).collect();
                f.errs.push(Invalid::bad_value(
                    ann::CLASS,
                    name,
                    if known.is_empty() {
                        "a [LoadBalancerClass \"NAME\"] section of cloud.conf (none is configured)"
                            .to_string()
                    } else {
                        format!("one of the configured classes: {}", known.join(", "))
                    },
                ));
                None
            }
        },
        None => None,
    };
    Placements {
        class,
        config: &cx.lbc.placement,
    }
}

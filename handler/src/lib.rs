//! The Azure Functions adapter: one function per step, spoken through the custom-handler
//! protocol ([`protocol`]), declared in `function_definitions/` ([`definitions`]).
//!
//! The handler crate is warp, the custom-handler protocol and settings; everything else
//! lives in `enroll-steps` and below. It never depends on the simulated tenant or the harness
//! (`scripts/test` checks `cargo tree`).

pub mod api;
pub mod app;
pub mod definitions;
pub mod protocol;
pub mod skim;

use std::collections::{BTreeMap, BTreeSet};

use definitions::FunctionDefinition;

/// Queue names the steps pass work through.
pub mod queues {
    /// Rosters to plan.
    pub const RECONCILE: &str = "reconcile";
    /// People to invite.
    pub const INVITE: &str = "invite";
    /// People to assign.
    pub const ASSIGN: &str = "assign";
    /// Assignments to remove.
    pub const REMOVE: &str = "remove";
    /// App role manifests to bring the tenant in line with.
    pub const MAP_ROLES: &str = "map-roles";
    /// Where the host (and the handler, for messages it gives up on) sets messages aside.
    pub const RECONCILE_POISON: &str = "reconcile-poison";
    /// Poison queue of `invite`.
    pub const INVITE_POISON: &str = "invite-poison";
    /// Poison queue of `assign`.
    pub const ASSIGN_POISON: &str = "assign-poison";
    /// Poison queue of `remove`.
    pub const REMOVE_POISON: &str = "remove-poison";
    /// Poison queue of `map-roles`.
    pub const MAP_ROLES_POISON: &str = "map-roles-poison";
}

/// What starts a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A blob written under `container/{name}`.
    Blob {
        /// Binding name.
        binding: &'static str,
        /// Container watched.
        container: &'static str,
    },
    /// A schedule.
    Timer {
        /// Binding name.
        binding: &'static str,
    },
    /// A queue message.
    Queue {
        /// Binding name.
        binding: &'static str,
        /// Queue read.
        queue: &'static str,
    },
}

/// One function the handler serves: its trigger and its queue outputs (binding, queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The function's name: its folder in `function_definitions/` and its handler path.
    pub name: &'static str,
    /// What starts it.
    pub trigger: Trigger,
    /// Queue output bindings as (binding name, queue name).
    pub outputs: &'static [(&'static str, &'static str)],
}

/// Every function the handler serves.
pub const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: "RosterUploaded",
        trigger: Trigger::Blob {
            binding: "roster",
            container: "rosters",
        },
        outputs: &[("reconcile", queues::RECONCILE)],
    },
    FunctionSpec {
        name: "ManifestUploaded",
        trigger: Trigger::Blob {
            binding: "manifest",
            container: "manifests",
        },
        outputs: &[("mapRoles", queues::MAP_ROLES)],
    },
    FunctionSpec {
        name: "Scheduled",
        trigger: Trigger::Timer { binding: "tick" },
        outputs: &[
            ("reconcile", queues::RECONCILE),
            ("mapRoles", queues::MAP_ROLES),
        ],
    },
    FunctionSpec {
        name: "Plan",
        trigger: Trigger::Queue {
            binding: "message",
            queue: queues::RECONCILE,
        },
        outputs: &[
            ("invite", queues::INVITE),
            ("assign", queues::ASSIGN),
            ("remove", queues::REMOVE),
            ("poison", queues::RECONCILE_POISON),
        ],
    },
    FunctionSpec {
        name: "Invite",
        trigger: Trigger::Queue {
            binding: "message",
            queue: queues::INVITE,
        },
        outputs: &[
            ("assign", queues::ASSIGN),
            ("poison", queues::INVITE_POISON),
        ],
    },
    FunctionSpec {
        name: "Assign",
        trigger: Trigger::Queue {
            binding: "message",
            queue: queues::ASSIGN,
        },
        outputs: &[("poison", queues::ASSIGN_POISON)],
    },
    FunctionSpec {
        name: "Remove",
        trigger: Trigger::Queue {
            binding: "message",
            queue: queues::REMOVE,
        },
        outputs: &[("poison", queues::REMOVE_POISON)],
    },
    FunctionSpec {
        name: "MapRoles",
        trigger: Trigger::Queue {
            binding: "message",
            queue: queues::MAP_ROLES,
        },
        outputs: &[("poison", queues::MAP_ROLES_POISON)],
    },
];

/// An HTTP-triggered function. The host forwards its requests as they came
/// (`enableForwardingHttpRequest` in host.json) to the same path (`/api/...`), and hands the
/// handler's answer back unchanged; that needs the trigger and one `http` output, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpFunctionSpec {
    /// The function's name: its folder in `function_definitions/`.
    pub name: &'static str,
    /// The trigger binding's name.
    pub binding: &'static str,
    /// The route template under the host's `routePrefix` (`api`).
    pub route: &'static str,
    /// Which key the host asks for (`function`: a function or host key).
    pub auth_level: &'static str,
    /// The `http` output binding's name.
    pub output: &'static str,
}

/// Every HTTP function the handler serves: the API ([`api`]).
pub const HTTP_FUNCTIONS: &[HttpFunctionSpec] = &[HttpFunctionSpec {
    name: "Api",
    binding: "req",
    route: "{*path}",
    auth_level: "function",
    output: "res",
}];

/// Compares the handler's functions with the definitions the host will read; returns every
/// disagreement as a sentence (empty when they agree).
pub fn check_definitions(definitions: &BTreeMap<String, FunctionDefinition>) -> Vec<String> {
    let mut problems = Vec::new();
    let served: BTreeSet<&str> = FUNCTIONS
        .iter()
        .map(|f| f.name)
        .chain(HTTP_FUNCTIONS.iter().map(|f| f.name))
        .collect();
    for name in definitions.keys() {
        if !served.contains(name.as_str()) {
            problems.push(format!(
                "function_definitions/{name} exists but the handler serves no function {name}"
            ));
        }
    }
    for spec in FUNCTIONS {
        let Some(definition) = definitions.get(spec.name) else {
            problems.push(format!(
                "the handler serves {} but function_definitions/{}/function.json is missing",
                spec.name, spec.name
            ));
            continue;
        };
        check_trigger(spec, definition, &mut problems);
        check_outputs(spec, definition, &mut problems);
    }
    for spec in HTTP_FUNCTIONS {
        match definitions.get(spec.name) {
            None => problems.push(format!(
                "the handler serves {} but function_definitions/{}/function.json is missing",
                spec.name, spec.name
            )),
            Some(definition) => check_http(spec, definition, &mut problems),
        }
    }
    problems
}

/// An HTTP function's definition: the trigger as the handler routes it, and exactly one
/// `http` output, or the host would not forward the request.
fn check_http(
    spec: &HttpFunctionSpec,
    definition: &FunctionDefinition,
    problems: &mut Vec<String>,
) {
    let name = spec.name;
    let trigger_ok = definition.trigger().is_some_and(|trigger| {
        trigger.kind.eq_ignore_ascii_case("httpTrigger")
            && trigger.name == spec.binding
            && trigger.route.as_deref() == Some(spec.route)
            && trigger.auth_level.as_deref() == Some(spec.auth_level)
    });
    if !trigger_ok {
        problems.push(format!(
            "{name}: the handler expects trigger httpTrigger `{}` with route `{}` and authLevel `{}`",
            spec.binding, spec.route, spec.auth_level
        ));
    }
    let outputs: Vec<(&str, &str)> = definition
        .outputs()
        .map(|b| (b.name.as_str(), b.kind.as_str()))
        .collect();
    if outputs != [(spec.output, "http")] {
        problems.push(format!(
            "{name}: an HTTP function must have exactly one output, http `{}`, for the host to forward its requests; function.json has {outputs:?}",
            spec.output
        ));
    }
}

fn check_trigger(spec: &FunctionSpec, definition: &FunctionDefinition, problems: &mut Vec<String>) {
    let name = spec.name;
    let Some(trigger) = definition.trigger() else {
        problems.push(format!("{name}: function.json has no trigger binding"));
        return;
    };
    let (kind, binding, detail_ok) = match spec.trigger {
        Trigger::Blob { binding, container } => (
            "blobTrigger",
            binding,
            trigger
                .path
                .as_deref()
                .is_some_and(|path| path.split('/').next() == Some(container))
                && trigger.data_type.as_deref() == Some("binary"),
        ),
        Trigger::Timer { binding } => ("timerTrigger", binding, trigger.schedule.is_some()),
        Trigger::Queue { binding, queue } => (
            "queueTrigger",
            binding,
            trigger.queue_name.as_deref() == Some(queue),
        ),
    };
    if !trigger.kind.eq_ignore_ascii_case(kind) || trigger.name != binding || !detail_ok {
        problems.push(format!(
            "{name}: the handler expects trigger {kind} `{binding}` ({:?}), function.json has {} `{}`",
            spec.trigger, trigger.kind, trigger.name
        ));
    }
}

fn check_outputs(spec: &FunctionSpec, definition: &FunctionDefinition, problems: &mut Vec<String>) {
    let name = spec.name;
    let declared: BTreeSet<(String, Option<String>)> = definition
        .outputs()
        .map(|b| (b.name.clone(), b.queue_name.clone()))
        .collect();
    let expected: BTreeSet<(String, Option<String>)> = spec
        .outputs
        .iter()
        .map(|(binding, queue)| (binding.to_string(), Some(queue.to_string())))
        .collect();
    for missing in expected.difference(&declared) {
        problems.push(format!(
            "{name}: the handler writes output `{}` (queue {:?}) that function.json does not declare",
            missing.0, missing.1
        ));
    }
    for unknown in declared.difference(&expected) {
        problems.push(format!(
            "{name}: function.json declares output `{}` (queue {:?}) that the handler does not write",
            unknown.0, unknown.1
        ));
    }
}

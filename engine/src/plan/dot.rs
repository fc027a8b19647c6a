//! `runbook graph`: the action DAG as Graphviz DOT or Mermaid, in deterministic order.

use std::fmt::Write as _;

use super::model::{EdgeKind, Plan, PlanNode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

pub fn render_graph(plan: &Plan, format: GraphFormat) -> String {
    let mut out = String::new();
    let nodes: Vec<_> = plan.nodes().collect();
    let short = |n: petgraph::graph::NodeIndex| format!("n{}", plan.position(n));
    match format {
        GraphFormat::Dot => {
            let _ = writeln!(out, "digraph \"{}\" {{", escape(&plan.runbook.name));
            let _ = writeln!(out, "  rankdir=LR;");
            for (p, phase) in plan.phases.iter().enumerate() {
                let _ = writeln!(out, "  subgraph cluster_{p} {{");
                let outage = if phase.outage { " (outage window)" } else { "" };
                let _ = writeln!(out, "    label=\"{}{outage}\";", escape(&phase.name));
                for (n, node) in &nodes {
                    match node {
                        PlanNode::Action(a) if plan.steps[a.step].phase == p => {
                            let shape = if plan.steps[a.step].irreversible {
                                ", shape=doubleoctagon"
                            } else {
                                ""
                            };
                            let from = plan.steps[a.step]
                                .origin
                                .as_ref()
                                .map_or(String::new(), |o| {
                                    format!(", tooltip=\"from {}\"", escape(&o.describe()))
                                });
                            let _ = writeln!(
                                out,
                                "    {} [label=\"{}\"{shape}{from}];",
                                short(*n),
                                escape(&plan.action_id(a))
                            );
                        }
                        PlanNode::Gate(g) if g.phase == p => {
                            let _ = writeln!(
                                out,
                                "    {} [label=\"{}\", shape=point];",
                                short(*n),
                                escape(&g.label)
                            );
                        }
                        _ => {}
                    }
                }
                let _ = writeln!(out, "  }}");
            }
            for (n, _) in &nodes {
                for (d, kind) in plan.dependencies(*n) {
                    let style = if kind == EdgeKind::Completion {
                        " [style=dashed]"
                    } else {
                        ""
                    };
                    let _ = writeln!(out, "  {} -> {}{style};", short(d), short(*n));
                }
            }
            let _ = writeln!(out, "}}");
        }
        GraphFormat::Mermaid => {
            let _ = writeln!(out, "flowchart LR");
            for (p, phase) in plan.phases.iter().enumerate() {
                let outage = if phase.outage { " (outage window)" } else { "" };
                let _ = writeln!(
                    out,
                    "  subgraph phase{p}[\"{}{outage}\"]",
                    mermaid(&phase.name)
                );
                for (n, node) in &nodes {
                    match node {
                        PlanNode::Action(a) if plan.steps[a.step].phase == p => {
                            // Points of no return are hexagons.
                            let (open, close) = if plan.steps[a.step].irreversible {
                                ("{{", "}}")
                            } else {
                                ("[", "]")
                            };
                            let from = plan.steps[a.step]
                                .origin
                                .as_ref()
                                .map_or(String::new(), |o| {
                                    format!("<br/><i>from {}</i>", mermaid(&o.describe()))
                                });
                            let _ = writeln!(
                                out,
                                "    {}{open}\"{}{from}\"{close}",
                                short(*n),
                                mermaid(&plan.action_id(a))
                            );
                        }
                        PlanNode::Gate(g) if g.phase == p => {
                            let _ = writeln!(out, "    {}([\"{}\"])", short(*n), mermaid(&g.label));
                        }
                        _ => {}
                    }
                }
                let _ = writeln!(out, "  end");
            }
            for (n, _) in &nodes {
                for (d, kind) in plan.dependencies(*n) {
                    let arrow = if kind == EdgeKind::Completion {
                        "-.->"
                    } else {
                        "-->"
                    };
                    let _ = writeln!(out, "  {} {arrow} {}", short(d), short(*n));
                }
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn mermaid(s: &str) -> String {
    s.replace('"', "#quot;")
}

//! The set of modules a runbook may name.

use std::collections::BTreeMap;

use crate::module::Module;

/// Modules by name, in name order (so listings and docs are stable).
pub struct Registry {
    modules: BTreeMap<&'static str, Box<dyn Module>>,
}

impl Registry {
    pub fn empty() -> Self {
        Self {
            modules: BTreeMap::new(),
        }
    }

    /// Every built-in module.
    pub fn builtin() -> Self {
        let mut registry = Self::empty();
        for module in crate::generic::all()
            .into_iter()
            .chain(crate::gtm::all())
            .chain(crate::http::all())
            .chain(crate::iris::all())
            .chain(crate::storage::all())
            .chain(crate::wsadmin::all())
        {
            registry.register(module);
        }
        registry
    }

    /// Adds a module. Panics on a duplicate name: that is a programming error in the library.
    pub fn register(&mut self, module: Box<dyn Module>) {
        let name = module.name();
        assert!(
            self.modules.insert(name, module).is_none(),
            "module `{name}` registered twice"
        );
    }

    pub fn get(&self, name: &str) -> Option<&dyn Module> {
        self.modules.get(name).map(AsRef::as_ref)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.modules.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Module> {
        self.modules.values().map(AsRef::as_ref)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.modules.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    //! The query-then-act contract, over every registered module: `check` cannot drift from
    //! `render` without one of these failing.

    use std::collections::BTreeMap;

    use super::Registry;
    use crate::args::Args;
    use crate::module::{Operation, Placement};
    use crate::value::Value;

    /// Arguments that pass every type: each required parameter as a value known only at run
    /// time (deferred values pass coercion), everything else absent or its default.
    fn deferred_args(module: &dyn crate::Module) -> Args {
        let raw: BTreeMap<String, Value> = module
            .params()
            .iter()
            .filter(|p| p.required)
            .map(|p| {
                (
                    p.name.to_owned(),
                    Value::Deferred(format!("{}.out", p.name)),
                )
            })
            .collect();
        Args::check(module.params(), raw).expect("deferred values pass every type")
    }

    #[test]
    fn check_refuses_what_render_refuses_and_only_probes() {
        let registry = Registry::builtin();
        let mut checked = 0;
        for module in registry.iter() {
            let args = deferred_args(module);
            let render = module.render(&args);
            let check = module.check(&args);
            match (&render, &check) {
                // No check: the module cannot tell without acting, so there is nothing to drift.
                (_, Ok(None)) => {}
                (Err(r), Err(c)) => assert_eq!(r, c, "{}: same refusal", module.name()),
                (Ok(_), Ok(ops)) => {
                    for op in ops.iter().flatten() {
                        match op {
                            Operation::Remote(cmd) => {
                                assert!(!cmd.mutating, "{}: a check is a probe", module.name());
                            }
                            Operation::Transfer(t) => {
                                assert!(t.probe, "{}: a check only compares", module.name());
                            }
                            Operation::Assert { .. } => {}
                            Operation::Manual { .. } => {
                                panic!("{}: a check asks no operator", module.name())
                            }
                        }
                    }
                    checked += 1;
                }
                // A check may refuse earlier than render only if render refuses too.
                (Ok(_), Err(e)) => {
                    panic!("{}: check refuses ({e:?}), render does not", module.name())
                }
                (Err(e), Ok(_)) => {
                    panic!("{}: render refuses ({e:?}), check does not", module.name())
                }
            }
        }
        assert!(
            checked >= 30,
            "most checks render with deferred arguments: {checked}"
        );
    }

    #[test]
    fn placements_come_from_the_specs() {
        let registry = Registry::builtin();
        let placed: Vec<(&str, Placement)> = registry
            .iter()
            .filter(|m| m.placement() != Placement::Hosts)
            .map(|m| (m.name(), m.placement()))
            .collect();
        assert_eq!(
            placed,
            [
                ("assert", Placement::Controller),
                ("manual", Placement::Operator)
            ]
        );
        let estimate = |name: &str| registry.get(name).expect("registered").estimate().as_secs();
        assert_eq!(
            (
                estimate("manual"),
                estimate("assert"),
                estimate("wait_for"),
                estimate("copy")
            ),
            (300, 1, 30, 10)
        );
    }
}

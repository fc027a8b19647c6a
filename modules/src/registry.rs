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

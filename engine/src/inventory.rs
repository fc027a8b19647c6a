//! The inventory: which hosts exist, how to reach them, their groups, roles and variables.
//!
//! Three formats load into the same [`Inventory`]: our own YAML (`kind: Inventory`), and an
//! Ansible inventory as operators already keep it, in YAML or INI. See docs/inventory.md.
//!
//! Each format parser (`native`, `ansible_yaml`, `ini`) only records what its file says into
//! a `draft::Draft`; membership, precedence and reference checks happen once, there, so the
//! formats cannot disagree about them.

mod ansible;
mod ansible_yaml;
mod draft;
mod ini;
mod load;
mod model;
mod native;
mod ssh_values;
mod vars_files;

pub use model::{Connection, Group, Host, HostId, Inventory, InventoryFormat, MAX_HOST_NAME};

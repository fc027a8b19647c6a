//! wsadmin (placeholder)
use crate::module::Module;
pub fn all() -> Vec<Box<dyn Module>> {
    Vec::new()
}

//! Checked arguments, as a module receives them.

use std::collections::BTreeMap;

use crate::arg::Arg;
use crate::param::ParamSpec;
use crate::value::Value;

/// Arguments after the compiler has checked them against a module's [`ParamSpec`]s: every
/// required parameter is present and every value has its declared type (or is deferred).
///
/// A module reads them through its parameter struct ([`params!`](crate::params)), never by a
/// name written at the point of use: there are no `str("kind")` readers here on purpose.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args {
    values: BTreeMap<String, Value>,
}

/// What is wrong with one argument; the compiler attaches the YAML span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError {
    Unknown {
        name: String,
        suggestion: Option<&'static str>,
    },
    Missing {
        name: &'static str,
    },
    Type {
        name: String,
        message: String,
    },
}

impl Args {
    /// Checks raw values against the specs, fills defaults, and returns every problem at once.
    pub fn check(specs: &[ParamSpec], raw: BTreeMap<String, Value>) -> Result<Args, Vec<ArgError>> {
        let mut errors = Vec::new();
        let mut values = BTreeMap::new();
        for (name, value) in raw {
            match specs.iter().find(|s| s.name == name) {
                None => errors.push(ArgError::Unknown {
                    suggestion: closest(&name, specs.iter().map(|s| s.name)),
                    name,
                }),
                Some(spec) => match spec.ty.coerce(value) {
                    Ok(v) => {
                        values.insert(name, v);
                    }
                    Err(message) => errors.push(ArgError::Type { name, message }),
                },
            }
        }
        for spec in specs {
            if !values.contains_key(spec.name)
                && !errors
                    .iter()
                    .any(|e| matches!(e, ArgError::Type { name, .. } if name == spec.name))
            {
                if let Some(default) = &spec.default {
                    values.insert(spec.name.to_owned(), default.clone());
                } else if spec.required {
                    errors.push(ArgError::Missing { name: spec.name });
                }
            }
        }
        if errors.is_empty() {
            Ok(Args { values })
        } else {
            Err(errors)
        }
    }

    /// The argument of the declared parameter `name`, as a parameter struct reads it.
    pub fn arg(&self, name: &'static str) -> Arg<'_> {
        Arg::new(name, self.values.get(name))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// The candidate closest to `name`, if any is close enough to be a likely typo. Distance is
/// optimal string alignment (a swap of two neighbours counts once), case-insensitive.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(name.chars().count()) / 3).max(1))
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::param::ParamType;

    #[test]
    fn check_reports_every_problem_and_fills_defaults() {
        let specs = [
            ParamSpec::required("path", ParamType::Path, "file"),
            ParamSpec::optional("mode", ParamType::String, "mode")
                .with_default(Value::Str("0644".into())),
            ParamSpec::optional("timeout", ParamType::Duration, "limit"),
        ];
        let mut raw = BTreeMap::new();
        raw.insert("pth".to_owned(), Value::Str("/x".into()));
        raw.insert("timeout".to_owned(), Value::Str("soon".into()));
        let errors = Args::check(&specs, raw).expect_err("invalid");
        assert!(errors.contains(&ArgError::Unknown {
            name: "pth".into(),
            suggestion: Some("path")
        }));
        assert!(errors.contains(&ArgError::Missing { name: "path" }));
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, ArgError::Type { name, .. } if name == "timeout"))
        );

        let mut raw = BTreeMap::new();
        raw.insert("path".to_owned(), Value::Str("/x".into()));
        let args = Args::check(&specs, raw).expect("valid");
        assert_eq!(args.arg("mode").str().as_deref(), Some("0644"));
        assert_eq!(args.arg("timeout").duration(), None);
    }

    #[test]
    fn closest_catches_swaps_and_ignores_strangers() {
        let names = ["name", "needs", "module", "register"];
        assert_eq!(closest("nmae", names.iter().copied()), Some("name"));
        assert_eq!(closest("modul", names.iter().copied()), Some("module"));
        assert_eq!(closest("regsiter", names.iter().copied()), Some("register"));
        assert_eq!(closest("xyz", names.iter().copied()), None);
        assert_eq!(closest("nope", ["copy", "shell"].into_iter()), None);
    }
}

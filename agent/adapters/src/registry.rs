//! The adapters a process knows: the built-in ones, plus those declared in TOML files of an
//! adapters directory (the controller), plus those shipped inside server specs (the agent).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use languard_proto::v1 as pb;

use crate::arma3::{self, Arma3};
use crate::declared::Declared;
use crate::{AdapterError, GameAdapter};

/// The known adapters.
#[derive(Debug)]
pub struct Registry {
    builtin: BTreeMap<String, Arc<dyn GameAdapter>>,
    declared: BTreeMap<String, Arc<Declared>>,
    errors: Vec<AdapterError>,
    /// Definitions that arrived inside specs, by their text.
    shipped: Mutex<HashMap<String, Arc<Declared>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in adapters only.
    pub fn builtin() -> Self {
        let mut builtin: BTreeMap<String, Arc<dyn GameAdapter>> = BTreeMap::new();
        builtin.insert(arma3::NAME.to_owned(), Arc::new(Arma3));
        Self {
            builtin,
            declared: BTreeMap::new(),
            errors: Vec::new(),
            shipped: Mutex::default(),
        }
    }

    /// The built-in adapters plus every `*.toml` file in `dir` (sorted by name). A file that
    /// cannot be read or checked, or that reuses a name, is skipped and reported in
    /// [`Registry::errors`]; a missing directory is an error of its own.
    pub fn load_dir(dir: &Path) -> Self {
        let mut r = Self::builtin();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                r.errors.push(AdapterError(format!(
                    "adapters directory {}: {e}",
                    dir.display()
                )));
                return r;
            }
        };
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let source = path.display().to_string();
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    r.errors.push(AdapterError(format!("{source}: {e}")));
                    continue;
                }
            };
            match Declared::parse(&text, &source) {
                Ok(d) => {
                    let name = d.name().to_owned();
                    if r.builtin.contains_key(&name) {
                        r.errors.push(AdapterError(format!(
                            "{source}: name {name:?} is a built-in adapter"
                        )));
                    } else if let Some(other) = r.declared.get(&name) {
                        r.errors.push(AdapterError(format!(
                            "{source}: name {name:?} is already declared by {}",
                            other.info().source
                        )));
                    } else {
                        r.declared.insert(name, Arc::new(d));
                    }
                }
                Err(e) => r.errors.push(e),
            }
        }
        r
    }

    /// Files that were skipped, with the reason.
    pub fn errors(&self) -> &[AdapterError] {
        &self.errors
    }

    /// The adapter called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn GameAdapter>> {
        self.builtin.get(name).cloned().or_else(|| {
            self.declared
                .get(name)
                .map(|d| d.clone() as Arc<dyn GameAdapter>)
        })
    }

    /// The TOML text of a declared adapter (empty for built-in and unknown names).
    pub fn definition(&self, name: &str) -> String {
        self.declared
            .get(name)
            .map(|d| d.text().to_owned())
            .unwrap_or_default()
    }

    /// Every adapter's description, ordered by name.
    pub fn list(&self) -> Vec<pb::GameType> {
        let mut v: Vec<pb::GameType> = self
            .builtin
            .values()
            .map(|a| a.info())
            .chain(self.declared.values().map(|d| d.info()))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The names of every adapter, for error messages.
    pub fn names(&self) -> Vec<String> {
        self.list().into_iter().map(|g| g.name).collect()
    }

    /// The adapter of a spec on an agent: a built-in one by name, else the definition shipped in
    /// the spec (parsed once per distinct text), else one this registry declares.
    pub fn for_spec(&self, spec: &pb::ServerSpec) -> Result<Arc<dyn GameAdapter>, AdapterError> {
        if let Some(a) = self.builtin.get(&spec.game_type) {
            return Ok(a.clone());
        }
        if !spec.adapter_definition.is_empty() {
            let mut cache = self
                .shipped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(d) = cache.get(&spec.adapter_definition) {
                return Ok(d.clone());
            }
            let d = Arc::new(Declared::parse(
                &spec.adapter_definition,
                &format!("adapter {:?} from the controller", spec.game_type),
            )?);
            if d.name() != spec.game_type {
                return Err(AdapterError(format!(
                    "the adapter definition shipped for game type {:?} is called {:?}",
                    spec.game_type,
                    d.name()
                )));
            }
            if cache.len() > 256 {
                cache.clear();
            }
            cache.insert(spec.adapter_definition.clone(), d.clone());
            return Ok(d);
        }
        self.get(&spec.game_type).ok_or_else(|| {
            AdapterError(format!(
                "unknown game type {:?}; known: {}",
                spec.game_type,
                self.names().join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_loads_good_files_and_reports_broken_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.toml"), "name = \"alpha\"\n").expect("write");
        std::fs::write(dir.path().join("b.toml"), "name = \"alpha\"\n").expect("write");
        std::fs::write(dir.path().join("c.toml"), "name = \"arma3\"\n").expect("write");
        std::fs::write(dir.path().join("d.toml"), "name = [").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
        let r = Registry::load_dir(dir.path());
        assert_eq!(r.names(), vec!["alpha", "arma3"]);
        let errors: Vec<String> = r.errors().iter().map(|e| e.0.clone()).collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("b.toml") && errors[0].contains("already declared"));
        assert!(errors[1].contains("c.toml") && errors[1].contains("built-in"));
        assert!(errors[2].contains("d.toml"));
        assert!(r.definition("alpha").contains("alpha"));
        assert!(r.definition("arma3").is_empty());
    }

    #[test]
    fn agents_use_the_shipped_definition() {
        let r = Registry::builtin();
        let mut spec = pb::ServerSpec {
            game_type: "beta".into(),
            executable_path: "/x/y".into(),
            ..Default::default()
        };
        assert!(r.for_spec(&spec).is_err());
        spec.adapter_definition = "name = \"beta\"\n".into();
        assert_eq!(r.for_spec(&spec).expect("shipped").info().name, "beta");
        spec.adapter_definition = "name = \"gamma\"\n".into();
        assert!(r.for_spec(&spec).expect_err("mismatch").0.contains("gamma"));
        spec.game_type = "arma3".into();
        assert_eq!(r.for_spec(&spec).expect("builtin").info().name, "arma3");
    }

    #[test]
    fn a_missing_directory_is_reported() {
        let r = Registry::load_dir(Path::new("/nonexistent/languard-adapters"));
        assert_eq!(r.names(), vec!["arma3"]);
        assert_eq!(r.errors().len(), 1);
    }
}

//! A reduced server-side-apply field manager: which manager owns which leaf field of an object
//! (maps are walked key by key, lists are atomic leaves), Update operations taking over the fields
//! they change, Apply operations conflicting (409 `FieldManagerConflict`) with other owners of a
//! field they would change unless `force=true`, and fields a manager stops applying being removed.
//! Ownership is kept beside the object; `metadata.managedFields` is not rendered.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub(crate) type Path = Vec<String>;

/// Owners of each leaf path: (manager, is_apply).
pub(crate) type Owners = BTreeMap<Path, Vec<(String, bool)>>;

/// One conflict: another manager owns a field the apply would change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conflict {
    pub manager: String,
    pub is_apply: bool,
    pub path: Path,
}

const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
];

/// Leaf fields of an object (server-owned metadata, kind and apiVersion excluded).
pub(crate) fn leaves(obj: &Value) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if k == "kind" || k == "apiVersion" || k == "status" {
                continue;
            }
            if k == "metadata" {
                if let Value::Object(meta) = v {
                    for (mk, mv) in meta {
                        if !SERVER_META.contains(&mk.as_str()) {
                            walk(mv, vec!["metadata".into(), mk.clone()], &mut out);
                        }
                    }
                }
                continue;
            }
            walk(v, vec![k.clone()], &mut out);
        }
    }
    out
}

fn walk(v: &Value, path: Path, out: &mut BTreeMap<Path, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut p = path.clone();
                p.push(k.clone());
                walk(x, p, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(path, other.clone());
        }
    }
}

/// `.data..dockerconfigjson` (structured-merge-diff's path text).
pub(crate) fn path_text(p: &Path) -> String {
    p.iter().map(|s| format!(".{s}")).collect()
}

/// The manager name for a non-apply write: `fieldManager`, else the User-Agent's first part.
pub(crate) fn update_manager(field_manager: Option<String>, user_agent: Option<&str>) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m;
    }
    let ua = user_agent.unwrap_or("").split('/').next().unwrap_or("");
    ua.chars().take(128).collect()
}

/// An Update operation by `manager`: it owns every leaf it added or changed; leaves that
/// disappeared lose their owners.
pub(crate) fn record_update(owners: &mut Owners, old: Option<&Value>, new: &Value, manager: &str) {
    let o = old.map(leaves).unwrap_or_default();
    let n = leaves(new);
    for (p, v) in &n {
        if o.get(p) != Some(v) {
            owners.insert(p.clone(), vec![(manager.to_string(), false)]);
        }
    }
    owners.retain(|p, _| n.contains_key(p));
}

fn remove_path(obj: &mut Value, p: &Path) {
    let Some((last, parent)) = p.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parent {
        match cur.get_mut(seg.as_str()) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Value::Object(m) = cur {
        m.remove(last);
    }
}

fn merge_config(target: &mut Value, config: &Value) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                if v.is_null() {
                    t.remove(k);
                } else if v.is_object() && t.get(k).is_some_and(Value::is_object) {
                    if let Some(slot) = t.get_mut(k) {
                        merge_config(slot, v);
                    }
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        (t, c) => *t = c.clone(),
    }
}

/// An Apply operation: the new object, or the conflicts (when not forced).
pub(crate) fn apply(
    owners: &mut Owners,
    current: &Value,
    config: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let cur = leaves(current);
    let cfg = leaves(config);
    let mut conflicts = Vec::new();
    for (p, v) in &cfg {
        if cur.get(p) == Some(v) {
            continue;
        }
        if let Some(os) = owners.get(p) {
            for (m, a) in os {
                if m != manager {
                    conflicts.push(Conflict {
                        manager: m.clone(),
                        is_apply: *a,
                        path: p.clone(),
                    });
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let mut merged = current.clone();
    let mut cfg_obj = config.clone();
    if let Some(m) = cfg_obj.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    merge_config(&mut merged, &cfg_obj);
    // Fields this manager applied before and no longer applies: drop them if nobody else owns them.
    let mut dropped = Vec::new();
    for (p, os) in owners.iter_mut() {
        if cfg.contains_key(p) {
            continue;
        }
        if os.iter().any(|(m, a)| m == manager && *a) {
            os.retain(|(m, a)| !(m == manager && *a));
            if os.is_empty() {
                dropped.push(p.clone());
            }
        }
    }
    for p in &dropped {
        remove_path(&mut merged, p);
        owners.remove(p);
    }
    for (p, v) in &cfg {
        let os = owners.entry(p.clone()).or_default();
        if cur.get(p) != Some(v) {
            os.clear();
        }
        os.retain(|(m, _)| m != manager);
        os.push((manager.to_string(), true));
    }
    Ok(merged)
}

/// The 409 body parts of an apply conflict: (message, causes as (message, field)).
pub(crate) fn conflict_message(conflicts: &[Conflict]) -> (String, Vec<(String, String)>) {
    let who = |c: &Conflict| {
        if c.is_apply {
            format!("{:?}", c.manager)
        } else {
            format!("{:?} using v1", c.manager)
        }
    };
    let causes = conflicts
        .iter()
        .map(|c| (format!("conflict with {}", who(c)), path_text(&c.path)))
        .collect();
    let msg = if conflicts.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            who(&conflicts[0]),
            path_text(&conflicts[0].path)
        )
    } else {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in conflicts {
            by.entry(who(c)).or_default().push(path_text(&c.path));
        }
        let mut lines = Vec::new();
        for (m, paths) in by {
            lines.push(format!("conflicts with {m}:"));
            for p in paths {
                lines.push(format!("- {p}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    (msg, causes)
}

/// An empty object, for creates through apply.
pub(crate) fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ownership_and_conflicts() {
        let mut owners = Owners::new();
        let created =
            json!({"metadata": {"name": "s", "uid": "u"}, "type": "Opaque", "data": {"a": "1"}});
        record_update(&mut owners, None, &created, "kubectl-create");
        let cfg = json!({"metadata": {"name": "s"}, "data": {"a": "2", "b": "3"}});
        let c = apply(&mut owners, &created, &cfg, "ecrupdater", false).unwrap_err();
        assert_eq!(c.len(), 1);
        let (msg, causes) = conflict_message(&c);
        assert_eq!(
            msg,
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: .data.a"
        );
        assert_eq!(causes[0].1, ".data.a");
        // Same value: shared, no conflict.
        let same = json!({"data": {"a": "1"}});
        let merged = apply(&mut owners, &created, &same, "ecrupdater", false).unwrap();
        assert_eq!(merged["data"]["a"], "1");
        // Forced: takes over.
        let merged = apply(&mut owners, &created, &cfg, "ecrupdater", true).unwrap();
        assert_eq!(merged["data"], json!({"a": "2", "b": "3"}));
        // Dropping a field it alone applied removes it.
        let merged2 = apply(
            &mut owners,
            &merged,
            &json!({"data": {"a": "2"}}),
            "ecrupdater",
            false,
        )
        .unwrap();
        assert_eq!(merged2["data"], json!({"a": "2"}));
        assert_eq!(
            path_text(&vec!["data".into(), ".dockerconfigjson".into()]),
            ".data..dockerconfigjson"
        );
    }
}

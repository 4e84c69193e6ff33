//! The patch mechanisms of the PATCH verb: JSON merge patch (RFC 7386), a strategic merge patch
//! reduced to what core/v1 Secrets and ServiceAccounts need (maps merge; lists replace, except
//! ServiceAccount `secrets`, merged by `name`; `$`-directives dropped), and JSON patch (RFC 6902:
//! add, remove, replace, move, copy, test) with evanphx/json-patch's error texts.

use serde_json::{Map, Value};

/// RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Strategic merge patch as the apiserver applies it to core/v1 objects of these kinds.
/// `merge_keys` lists the `(path, key)` lists that merge by key; every other list is replaced.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value, merge_keys: &[(&str, &str)]) {
    smp(target, patch, "", merge_keys);
}

fn smp(target: &mut Value, patch: &Value, path: &str, merge_keys: &[(&str, &str)]) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = patch.clone();
        strip_directives(&mut clean);
        *target = clean;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        let child = format!("{path}/{k}");
        if v.is_null() {
            t.remove(k);
            continue;
        }
        if let (Some(key), Value::Array(items)) = (
            merge_keys
                .iter()
                .find(|(pp, _)| *pp == child)
                .map(|(_, key)| *key),
            v,
        ) {
            let cur = t.entry(k.clone()).or_insert(Value::Array(Vec::new()));
            if !cur.is_array() {
                *cur = Value::Array(Vec::new());
            }
            if let Value::Array(list) = cur {
                for item in items {
                    let id = item.get(key).cloned();
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    let pos = list
                        .iter()
                        .position(|e| id.is_some() && e.get(key).cloned() == id);
                    match (pos, delete) {
                        (Some(i), true) => {
                            list.remove(i);
                        }
                        (None, true) => {}
                        (Some(i), false) => smp(&mut list[i], item, &child, merge_keys),
                        (None, false) => {
                            let mut clean = item.clone();
                            strip_directives(&mut clean);
                            list.push(clean);
                        }
                    }
                }
            }
            continue;
        }
        let slot = t.entry(k.clone()).or_insert(Value::Null);
        if v.is_object() {
            smp(slot, v, &child, merge_keys);
        } else {
            let mut clean = v.clone();
            strip_directives(&mut clean);
            *slot = clean;
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            for x in m.values_mut() {
                strip_directives(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// Why a JSON patch failed: `Decode` is a 400 (bad patch document), `Apply` a 422.
#[derive(Debug, PartialEq)]
pub enum JsonPatchError {
    Decode(String),
    Apply(String),
}

fn parse_pointer(p: &str) -> Result<Vec<String>, JsonPatchError> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    if !p.starts_with('/') {
        return Err(JsonPatchError::Apply(format!(
            "JSON pointer must be empty or start with a \"/\": {p:?}"
        )));
    }
    Ok(p[1..]
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(seg)?,
            Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn missing(op: &str, path: &str) -> JsonPatchError {
    JsonPatchError::Apply(format!(
        "{op} operation does not apply: doc is missing path: \"{path}\": missing value"
    ))
}

fn op_add(doc: &mut Value, path: &str, value: Value) -> Result<(), JsonPatchError> {
    let segs = parse_pointer(path)?;
    let Some((last, parent)) = segs.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent) {
        Some(Value::Object(m)) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            match last.parse::<usize>() {
                Ok(i) if i <= a.len() => {
                    a.insert(i, value);
                    Ok(())
                }
                _ => Err(JsonPatchError::Apply(format!(
                    "add operation does not apply: doc is missing path: \"{path}\": invalid index referenced: {last}"
                ))),
            }
        }
        _ => Err(missing("add", path)),
    }
}

fn op_remove(doc: &mut Value, path: &str, op: &str) -> Result<Value, JsonPatchError> {
    let segs = parse_pointer(path)?;
    let Some((last, parent)) = segs.split_last() else {
        return Err(missing(op, path));
    };
    match get_mut(doc, parent) {
        Some(Value::Object(m)) => m.remove(last).ok_or_else(|| missing(op, path)),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing(op, path)),
        },
        _ => Err(missing(op, path)),
    }
}

/// Applies an RFC 6902 patch document to `doc` (all or nothing).
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), JsonPatchError> {
    let Value::Array(ops) = patch else {
        return Err(JsonPatchError::Decode(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
        ));
    };
    let mut work = doc.clone();
    for op in ops {
        let Value::Object(o) = op else {
            return Err(JsonPatchError::Decode(
                "json: cannot unmarshal non-object into Go value of type jsonpatch.Operation"
                    .into(),
            ));
        };
        let kind = o.get("op").and_then(Value::as_str).unwrap_or("");
        let path = o.get("path").and_then(Value::as_str);
        let from = o.get("from").and_then(Value::as_str);
        let value = o.get("value");
        let need_path =
            || path.ok_or_else(|| JsonPatchError::Apply(format!("{kind} operation missing path")));
        match kind {
            "add" => {
                let p = need_path()?;
                let v = value
                    .ok_or_else(|| JsonPatchError::Apply("add operation missing value".into()))?;
                op_add(&mut work, p, v.clone())?;
            }
            "remove" => {
                let p = need_path()?;
                op_remove(&mut work, p, "remove")?;
            }
            "replace" => {
                let p = need_path()?;
                let v = value.ok_or_else(|| {
                    JsonPatchError::Apply("replace operation missing value".into())
                })?;
                let segs = parse_pointer(p)?;
                match get_mut(&mut work, &segs) {
                    Some(slot) => *slot = v.clone(),
                    None => {
                        return Err(JsonPatchError::Apply(format!(
                            "replace operation does not apply: doc is missing key: {p}: missing value"
                        )));
                    }
                }
            }
            "move" => {
                let p = need_path()?;
                let f = from
                    .ok_or_else(|| JsonPatchError::Apply("move operation missing from".into()))?;
                let v = op_remove(&mut work, f, "move")?;
                op_add(&mut work, p, v)?;
            }
            "copy" => {
                let p = need_path()?;
                let f = from
                    .ok_or_else(|| JsonPatchError::Apply("copy operation missing from".into()))?;
                let segs = parse_pointer(f)?;
                let v = get(&work, &segs)
                    .cloned()
                    .ok_or_else(|| missing("copy", f))?;
                op_add(&mut work, p, v)?;
            }
            "test" => {
                let p = need_path()?;
                let segs = parse_pointer(p)?;
                let expected = value.cloned().unwrap_or(Value::Null);
                let actual = get(&work, &segs).cloned().unwrap_or(Value::Null);
                if actual != expected {
                    return Err(JsonPatchError::Apply(format!(
                        "testing value {p} failed: test failed"
                    )));
                }
            }
            other => {
                return Err(JsonPatchError::Apply(format!("Unexpected kind: {other}")));
            }
        }
    }
    *doc = work;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn strategic_lists() {
        let keys = [("/secrets", "name")];
        let mut t = json!({"secrets": [{"name": "a"}], "imagePullSecrets": [{"name": "x"}]});
        strategic_merge_patch(
            &mut t,
            &json!({"secrets": [{"name": "b"}], "imagePullSecrets": [{"name": "y"}],
                    "$setElementOrder/secrets": []}),
            &keys,
        );
        assert_eq!(
            t,
            json!({"secrets": [{"name": "a"}, {"name": "b"}], "imagePullSecrets": [{"name": "y"}]})
        );
    }

    #[test]
    fn json_ops() {
        let mut d = json!({"l": [{"name": "a"}], "m": {"k": "v"}});
        json_patch(
            &mut d,
            &json!([
                {"op": "test", "path": "/l", "value": [{"name": "a"}]},
                {"op": "add", "path": "/l/-", "value": {"name": "b"}},
                {"op": "replace", "path": "/m/k", "value": "w"},
                {"op": "copy", "from": "/m/k", "path": "/m/k2"},
                {"op": "move", "from": "/m/k2", "path": "/m/k3"},
                {"op": "remove", "path": "/l/0"}
            ]),
        )
        .unwrap();
        assert_eq!(d, json!({"l": [{"name": "b"}], "m": {"k": "w", "k3": "w"}}));
        let before = d.clone();
        let e = json_patch(
            &mut d,
            &json!([{"op": "add", "path": "/x", "value": 1},
                    {"op": "test", "path": "/l", "value": []}]),
        )
        .unwrap_err();
        assert_eq!(
            e,
            JsonPatchError::Apply("testing value /l failed: test failed".into())
        );
        assert_eq!(d, before);
        assert!(matches!(
            json_patch(&mut d, &json!({"op": "add"})),
            Err(JsonPatchError::Decode(_))
        ));
        assert!(json_patch(&mut d, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }
}

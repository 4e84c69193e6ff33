//! Watch streams (`?watch=true`): a chunked 200 with one `{"type":..,"object":..}` JSON line per
//! event. Synthetic ADDED events when resourceVersion is unset or "0"; ERROR 410 Expired when it
//! is older than the last compaction; selectors applied to events (an object moving into or out of
//! the selection becomes ADDED / DELETED, as the watch cache does); BOOKMARKs when asked; the
//! stream ends after timeoutSeconds or when the server stops.

use super::Inner;
use super::routes::{is_true, parse_selectors};
use super::status::{self, ApiResult};
use super::store::{Event, Res, Selectors, with_kind};
use crate::http::{ChunkWriter, Reply, Request};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default stream length when timeoutSeconds is absent (the apiserver picks 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
const MAX_BATCH: usize = 512;

struct Watch {
    res: Res,
    ns: Option<String>,
    sel: Selectors,
}

impl Watch {
    /// The event type this watcher sees for a log entry, if any.
    fn translate(&self, e: &Event) -> Option<&'static str> {
        if e.res != self.res {
            return None;
        }
        if let Some(ns) = &self.ns
            && e.ns != *ns
        {
            return None;
        }
        let cur = self.sel.matches(self.res, &e.obj);
        if e.etype == "MODIFIED" {
            let prev = e
                .prev
                .as_ref()
                .map_or(cur, |p| self.sel.matches(self.res, p));
            return match (prev, cur) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            };
        }
        cur.then_some(e.etype)
    }
}

fn line(etype: &str, obj: &Value) -> Vec<u8> {
    let mut s = json!({"type": etype, "object": obj})
        .to_string()
        .into_bytes();
    s.push(b'\n');
    s
}

fn too_old(rv: u64, oldest: u64) -> Vec<u8> {
    let st = status::status_body(
        410,
        "Expired",
        &format!("too old resource version: {rv} ({oldest})"),
        None,
    );
    line("ERROR", &st)
}

pub(crate) fn start(
    inner: &Arc<Inner>,
    req: &Request,
    res: Res,
    ns: Option<String>,
) -> ApiResult<Reply> {
    let sel = parse_selectors(req, res)?;
    let rv_param = req.param("resourceVersion").unwrap_or_default();
    let start_rv = if rv_param.is_empty() || rv_param == "0" {
        None
    } else {
        Some(rv_param.parse::<u64>().map_err(|_| {
            status::bad_request(&format!(
                "resourceVersion: Invalid value: {rv_param:?}: must be a non-negative integer"
            ))
        })?)
    };
    let timeout = match req.param("timeoutSeconds").filter(|s| !s.is_empty()) {
        None => DEFAULT_TIMEOUT,
        Some(s) => match s.parse::<u64>() {
            Ok(0) => DEFAULT_TIMEOUT,
            Ok(n) => Duration::from_secs(n.min(7 * 24 * 3600)),
            Err(_) => {
                return Err(status::bad_request(&format!(
                    "timeoutSeconds: Invalid value: {s:?}: must be an integer"
                )));
            }
        },
    };
    let bookmarks = is_true(req.param("allowWatchBookmarks"));
    let w = Watch { res, ns, sel };
    let (initial, cursor, interval) = {
        let st = inner.lock();
        let interval = st.bookmark_interval;
        match start_rv {
            None => {
                let mut lines = Vec::new();
                let map = st.store.map(res);
                let iter: Box<dyn Iterator<Item = (&(String, String), &Value)>> = match &w.ns {
                    Some(n) => Box::new(
                        map.range((n.clone(), String::new())..)
                            .take_while(move |(k, _)| k.0 == *n),
                    ),
                    None => Box::new(map.iter()),
                };
                for (_, o) in iter {
                    if w.sel.matches(res, o) {
                        lines.push(line("ADDED", &with_kind(res, o)));
                    }
                }
                (lines, st.store.rv, interval)
            }
            Some(rv) if rv < st.store.compacted_rv => {
                (vec![too_old(rv, st.store.compacted_rv)], u64::MAX, interval)
            }
            Some(rv) => (Vec::new(), rv, interval),
        }
    };
    let inner = inner.clone();
    Ok(Reply::Stream {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Box::new(move |out: &mut ChunkWriter<'_>| {
            run(
                &inner, out, &w, initial, cursor, timeout, bookmarks, interval,
            )
        }),
    })
}

#[allow(clippy::too_many_arguments)]
fn run(
    inner: &Inner,
    out: &mut ChunkWriter<'_>,
    w: &Watch,
    initial: Vec<Vec<u8>>,
    mut cursor: u64,
    timeout: Duration,
    bookmarks: bool,
    interval: Duration,
) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    for l in &initial {
        out.chunk(l)?;
    }
    if cursor == u64::MAX {
        // Started from a compacted resourceVersion: the ERROR event was the whole stream.
        return Ok(());
    }
    let mut next_bookmark = Instant::now() + interval;
    let mut idle = false;
    loop {
        // Between waits, notice a client that went away (checked outside the state lock).
        if idle && !out.peer_alive() {
            return Ok(());
        }
        idle = false;
        let mut lines = Vec::new();
        let mut gone = None;
        {
            let st = inner.lock();
            'scan: {
                if inner.stopped() || Instant::now() >= deadline {
                    break 'scan;
                }
                if cursor < st.store.trimmed_rv {
                    gone = Some(too_old(cursor, st.store.trimmed_rv));
                    break 'scan;
                }
                let start = st.store.events_after(cursor);
                let mut scanned_all = true;
                for e in st.store.events.range(start..) {
                    if lines.len() >= MAX_BATCH {
                        scanned_all = false;
                        break;
                    }
                    if let Some(t) = w.translate(e) {
                        lines.push(line(t, &e.obj));
                    }
                    cursor = e.rv;
                }
                if scanned_all {
                    cursor = cursor.max(st.store.rv);
                }
                let now = Instant::now();
                if !lines.is_empty() || (bookmarks && now >= next_bookmark) {
                    break 'scan;
                }
                let mut wake = deadline.min(now + Duration::from_millis(500));
                if bookmarks {
                    wake = wake.min(next_bookmark);
                }
                drop(inner.wait(st, wake.saturating_duration_since(now)));
                idle = true;
            }
        }
        for l in &lines {
            out.chunk(l)?;
        }
        if let Some(g) = gone {
            out.chunk(&g)?;
            return Ok(());
        }
        if inner.stopped() || Instant::now() >= deadline {
            return Ok(());
        }
        if bookmarks && Instant::now() >= next_bookmark {
            let obj = json!({"kind": w.res.kind(), "apiVersion": "v1",
                             "metadata": {"resourceVersion": cursor.to_string(), "creationTimestamp": null}});
            out.chunk(&line("BOOKMARK", &obj))?;
            next_bookmark = Instant::now() + interval;
        }
    }
}

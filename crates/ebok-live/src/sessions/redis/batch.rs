//! The batch apply of the Redis live-session store: pipelined reads, then pipelined
//! compare-and-set script calls.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::keys::session_hash;
use super::scripts::{run_apply, ApplyCall};
use super::{check_key, RedisSessions, KNOWN_MAX, KNOWN_NAS_MAX, SCRIPT_STEPS};
use crate::sessions::record::{decode_record, decode_time, encode_record};
use crate::sessions::rules::{self, Record};
use crate::sessions::{Applied, StoreError};
use ebok_radius::event::{AccountingEvent, StatusType};

impl RedisSessions {
    /// [`LiveSessions::apply_batch`] for Start/Interim/Stop events: one pipeline reads every
    /// session and NAS restart time the batch names, the events are planned in order (each
    /// on the state the previous one of its session leaves), and one pipeline runs all the
    /// compare-and-set scripts, in order. Redis runs a pipeline's scripts one after the
    /// other, so each sees its predecessors' writes; a script that finds its session (or NAS
    /// restart time) changed by someone else refuses, and that event and the later ones of
    /// its session are applied again one by one, on fresh reads.
    pub(super) async fn apply_session_batch(
        &self,
        events: &[(&AccountingEvent, OffsetDateTime)],
    ) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        struct Session {
            h: u64,
            /// Encoded record as stored (before the batch) or as planned so far.
            cur: Option<Vec<u8>>,
            prior: Option<Record>,
        }
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut sessions: Vec<Session> = Vec::new();
        let mut nas_index: HashMap<&str, usize> = HashMap::new();
        let mut of_event = Vec::with_capacity(events.len());
        // What this instance knows is planned on without a read; a Start of a session it does
        // not know is planned as new. Everything else is read in one pipeline.
        let mut read = redis::pipe();
        let mut to_read = Vec::new();
        // Per NAS of the batch: its known restart time, `None` while it is still to be read.
        let mut nas_known: Vec<Option<Option<Vec<u8>>>> = Vec::new();
        {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            for (e, _) in events {
                let h = session_hash(&e.nas, &e.session_id);
                let i = *index.entry(h).or_insert_with(|| {
                    let cur = match known.records.remove(&h) {
                        Some(v) => v,
                        None if e.status == StatusType::Start => None,
                        None => {
                            read.cmd("HGET")
                                .arg(self.session_key(h))
                                .arg(&h.to_be_bytes()[..]);
                            to_read.push(sessions.len());
                            None
                        }
                    };
                    sessions.push(Session {
                        h,
                        cur,
                        prior: None,
                    });
                    sessions.len() - 1
                });
                of_event.push(i);
            }
            for (e, _) in events {
                let n = nas_index.len();
                if let std::collections::hash_map::Entry::Vacant(v) = nas_index.entry(&e.nas) {
                    v.insert(n);
                    let value = known.resets.get(&e.nas).cloned();
                    if value.is_none() {
                        read.cmd("HGET")
                            .arg(format!("{}nasreset", self.prefix))
                            .arg(&e.nas);
                    }
                    nas_known.push(value);
                }
            }
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<Vec<u8>>> = if read.cmd_iter().next().is_some() {
            read.query_async(&mut conn).await?
        } else {
            Vec::new()
        };
        let mut values = values.into_iter();
        let mut next_value = || {
            values
                .next()
                .ok_or_else(|| StoreError::Protocol("pipeline answered a different count".into()))
        };
        for &i in &to_read {
            sessions[i].cur = next_value()?;
        }
        let resets = nas_known
            .into_iter()
            .map(|v| match v {
                Some(v) => Ok(v),
                None => next_value(),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reset_times = resets
            .iter()
            .map(|r| r.as_deref().map(decode_time).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        for s in &mut sessions {
            s.prior = s.cur.as_deref().map(decode_record).transpose()?;
        }

        // Plan in order. results[i]: what event i reports, `None` while its script has not
        // answered (or refused); scripted: (event, what it reports when its script runs).
        let mut results: Vec<Option<Result<Applied, StoreError>>> =
            (0..events.len()).map(|_| None).collect();
        let mut scripted_ok = vec![false; events.len()];
        let mut scripted: Vec<(usize, Applied)> = Vec::new();
        // The steps go into script calls of up to SCRIPT_STEPS each, all in one pipeline.
        let mut calls: Vec<ApplyCall> = Vec::new();
        let mut in_call = SCRIPT_STEPS;
        for (i, (event, expires_at)) in events.iter().enumerate() {
            let s = &mut sessions[of_event[i]];
            if let Some(p) = &s.prior {
                if let Err(e) = check_key(p, &event.nas, &event.session_id) {
                    results[i] = Some(Err(e));
                    continue;
                }
            }
            let n = nas_index[event.nas.as_str()];
            let step = rules::step_event(s.prior.as_ref(), reset_times[n], event, *expires_at);
            if !step.write {
                results[i] = Some(Ok(step.applied));
                continue;
            }
            // An event whose record cannot be encoded is refused alone; the session's later
            // events are planned on the state before it.
            let new_value = match step.record.as_ref().map(encode_record).transpose() {
                Ok(v) => v.unwrap_or_default(),
                Err(e) => {
                    results[i] = Some(Err(e));
                    continue;
                }
            };
            if in_call == SCRIPT_STEPS {
                calls.push(self.cas_invocation());
                in_call = 0;
            }
            in_call += 1;
            self.push_step(
                calls.last_mut().expect("pushed above"),
                s.h,
                s.cur.as_deref(),
                Some((&event.nas, resets[n].as_deref())),
                s.prior.as_ref(),
                &step,
                new_value.clone(),
            );
            s.cur = (!new_value.is_empty()).then_some(new_value);
            s.prior = step.record;
            scripted.push((i, step.applied));
        }
        let done: Vec<i64> = if calls.is_empty() {
            Vec::new()
        } else {
            run_apply(&mut conn, &calls)
                .await?
                .into_iter()
                .flatten()
                .collect()
        };
        if done.len() != scripted.len() {
            return Err(StoreError::Protocol(
                "pipeline answered a different count".into(),
            ));
        }
        for ((i, applied), ok) in scripted.into_iter().zip(done) {
            if ok == 1 {
                results[i] = Some(Ok(applied));
                scripted_ok[i] = true;
            }
        }
        // From a refused script on, a session's events were planned on a state that was not
        // there: apply them again one by one, in order (except those whose script ran).
        let mut out = Vec::with_capacity(events.len());
        let mut refused = vec![false; sessions.len()];
        let mut refused_nas = vec![false; nas_index.len()];
        for (i, (event, expires_at)) in events.iter().enumerate() {
            let si = of_event[i];
            let r = match results[i].take() {
                Some(r) if !refused[si] || scripted_ok[i] => r,
                _ => {
                    refused[si] = true;
                    refused_nas[nas_index[event.nas.as_str()]] = true;
                    self.apply_session(event, *expires_at).await
                }
            };
            out.push(r);
        }
        // Remember what Redis holds now, except what a refusal showed to be out of date.
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.records.len() + sessions.len() > KNOWN_MAX {
            known.records.clear();
        }
        for (s, refused) in sessions.into_iter().zip(refused) {
            if !refused {
                known.records.insert(s.h, s.cur);
            }
        }
        if known.resets.len() + nas_index.len() > KNOWN_NAS_MAX {
            known.resets.clear();
        }
        for (nas, &n) in &nas_index {
            if refused_nas[n] {
                known.resets.remove(*nas);
            } else if known.resets.get(*nas) != Some(&resets[n]) {
                known.resets.insert((*nas).to_owned(), resets[n].clone());
            }
        }
        Ok(out)
    }
}

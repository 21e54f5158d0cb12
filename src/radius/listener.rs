//! The UDP accounting listener: our own tokio loop. It only moves bytes: receive, pick the
//! NAS by source address, call the pure checks in [`super::packet`] and [`super::decode`],
//! hand the event to [`Ingest`], reply once the event is durable. Concurrency is bounded by
//! a semaphore; when it is exhausted the loop stops reading and the socket buffer queues.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::net::UdpSocket;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::decode::decode_event;
use super::dedup::{DuplicateCache, Seen};
use super::dict::Dictionary;
use super::nas::NasTable;
use super::packet::{self, DropReason};
use crate::ingest::{Ingest, Recorded};

const CODE_ACCOUNTING_REQUEST: u8 = 4;
const CODE_STATUS_SERVER: u8 = 12;

/// Everything a request handler needs.
pub struct RadiusContext {
    /// The NAS table; replaced as a whole on reload.
    pub nas: RwLock<Arc<NasTable>>,
    pub dedup: DuplicateCache,
    pub ingest: Arc<Ingest>,
    pub dict: &'static Dictionary,
    /// Bounds the requests processed at once.
    pub limit: Arc<Semaphore>,
    pub max_in_flight: usize,
}

impl RadiusContext {
    pub fn nas_table(&self) -> Arc<NasTable> {
        self.nas.read().expect("nas lock").clone()
    }

    /// Swap in a new NAS table (SIGHUP reload); requests in flight keep the old one.
    pub fn replace_nas_table(&self, table: NasTable) {
        *self.nas.write().expect("nas lock") = Arc::new(table);
    }

    /// Wait until no request is in flight.
    pub async fn drain(&self) {
        if let Ok(all) = self.limit.acquire_many(self.max_in_flight as u32).await {
            drop(all);
        }
    }
}

/// Receive until `shutdown` turns true. Requests already received are finished by their
/// tasks; call [`RadiusContext::drain`] to wait for them.
pub async fn serve(
    socket: Arc<UdpSocket>,
    ctx: Arc<RadiusContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let permit = tokio::select! {
            p = ctx.limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let (n, source) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "radius: receive failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let datagram = buf[..n].to_vec();
        let ctx = ctx.clone();
        let socket = socket.clone();
        tokio::spawn(async move {
            handle(&ctx, &socket, &datagram, source, permit).await;
        });
    }
}

fn dropped(reason: DropReason, source: SocketAddr) {
    metrics::counter!("ebok_radius_dropped_total", "reason" => reason.label()).increment(1);
    tracing::warn!(%source, reason = reason.label(), "radius: dropped packet: {reason}");
}

async fn handle(
    ctx: &RadiusContext,
    socket: &UdpSocket,
    datagram: &[u8],
    source: SocketAddr,
    _permit: OwnedSemaphorePermit,
) {
    let arrival = ctx.ingest.clock.now();
    let packet = match packet::frame(datagram) {
        Ok(p) => p,
        Err(r) => return dropped(r, source),
    };
    let Some(nas) = ctx.nas_table().find(source.ip()).cloned() else {
        return dropped(DropReason::UnknownNas, source);
    };
    match packet[0] {
        CODE_ACCOUNTING_REQUEST => {}
        CODE_STATUS_SERVER => {
            if let Err(r) = packet::verify_status_server(packet, &nas.secret) {
                return dropped(r, source);
            }
            metrics::counter!("ebok_radius_packets_total", "type" => "status_server").increment(1);
            let reply = packet::accounting_response(packet, &nas.secret, true);
            send(socket, &reply, source).await;
            return;
        }
        _ => return dropped(DropReason::UnknownCode, source),
    }
    if let Err(r) = packet::verify_accounting_request(packet, &nas.secret) {
        return dropped(r, source);
    }
    let id = packet::request_identifier(packet);
    let auth = packet::request_authenticator(packet);
    match ctx.dedup.check(source, id, auth) {
        Seen::New => {}
        Seen::InProgress => {
            metrics::counter!("ebok_radius_duplicates_total", "action" => "in_progress")
                .increment(1);
            return;
        }
        Seen::Answered(reply) => {
            metrics::counter!("ebok_radius_duplicates_total", "action" => "resent").increment(1);
            send(socket, &reply, source).await;
            return;
        }
    }
    let event = match decode_event(packet, source.ip(), &nas.name, arrival, ctx.dict) {
        Ok(e) => e,
        Err(r) => {
            ctx.dedup.forget(source, id, auth);
            return dropped(r, source);
        }
    };
    metrics::counter!("ebok_radius_packets_total", "type" => event.status.label()).increment(1);
    let expires_at = arrival + nas.expiry;
    match ctx.ingest.record(event, expires_at).await {
        Ok(how) => {
            if how == Recorded::Spooled {
                metrics::counter!("ebok_radius_spooled_total").increment(1);
            }
            let reply = packet::accounting_response(packet, &nas.secret, false);
            ctx.dedup.answered(source, id, auth, &reply);
            send(socket, &reply, source).await;
        }
        Err(e) => {
            // Neither the stores nor the spool took it: stay silent so the NAS retries.
            ctx.dedup.forget(source, id, auth);
            metrics::counter!("ebok_radius_dropped_total", "reason" => "not_durable").increment(1);
            tracing::error!(%source, error = %e, "radius: event could not be made durable; not answering");
        }
    }
}

async fn send(socket: &UdpSocket, reply: &[u8], to: SocketAddr) {
    match socket.send_to(reply, to).await {
        Ok(_) => metrics::counter!("ebok_radius_replies_total").increment(1),
        Err(e) => tracing::warn!(%to, error = %e, "radius: reply not sent"),
    }
}

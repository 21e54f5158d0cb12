//! The runtime the journal replay works on: one thread at a lower CPU priority (`nice`), so
//! that under load answering the NAS (journal append and reply, on the main runtime) goes
//! first and the live map and history catch up behind it. accel-ppp gives up on a request
//! after about 3 s; the panel seeing a new session a few seconds late is harmless.
//!
//! Threads started from this runtime inherit its priority: the SQLite worker threads of the
//! embedded store and of the history writer's own connection, when they are opened on it.
//! Dropping the [`Background`] ends the thread; tasks still on it are dropped (the stores
//! answer only after a commit, so nothing answered depends on them).

use std::io;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The low-priority runtime; dropping it stops it.
#[derive(Debug)]
pub struct Background {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl Background {
    /// Start the thread `ebok-replay` with niceness `nice` (1..=19, relative to the process).
    pub fn start(nice: i32) -> io::Result<Background> {
        let (ready, started) = std::sync::mpsc::channel::<io::Result<Handle>>();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ebok-replay".into())
            .spawn(move || {
                if let Err(e) = lower_priority(nice) {
                    // A sandbox that forbids it (seccomp): replay at normal priority.
                    tracing::warn!(error = %e, nice, "replay thread: cannot lower its priority");
                }
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(runtime.handle().clone()));
                // Until the sender is dropped (or used).
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        let handle = started
            .recv()
            .map_err(|_| io::Error::other("the replay thread ended before it started"))??;
        Ok(Background {
            handle,
            _stop: stop,
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// Raise this thread's niceness by `nice` (Linux: per thread, inherited by the threads it
/// starts; lowering one's own priority needs no privilege).
fn lower_priority(nice: i32) -> io::Result<()> {
    // SAFETY: getpriority/setpriority on the calling thread's own id; no memory is passed.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        if current == -1 && *libc::__errno_location() != 0 {
            return Err(io::Error::last_os_error());
        }
        let target = (current + nice).min(19);
        if libc::setpriority(libc::PRIO_PROCESS, tid, target) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn niceness_of(tid: libc::pid_t) -> i32 {
        // Field 19 of /proc/self/task/TID/stat (after the parenthesised name).
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn tasks_and_the_threads_they_start_run_at_the_lower_priority() {
        // SAFETY (all gettid calls): no arguments, always succeeds.
        let mine = niceness_of(unsafe { libc::gettid() });
        let bg = Background::start(5).unwrap();
        let (on_runtime, on_child) = bg
            .handle()
            .spawn(async {
                let (tx, rx) = std::sync::mpsc::channel();
                let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
                let child = std::thread::spawn(move || {
                    tx.send(unsafe { libc::gettid() }).unwrap();
                    let _ = done_rx.recv();
                });
                let child_nice = niceness_of(rx.recv().unwrap());
                done_tx.send(()).unwrap();
                child.join().unwrap();
                (niceness_of(unsafe { libc::gettid() }), child_nice)
            })
            .await
            .unwrap();
        assert_eq!(on_runtime, (mine + 5).min(19));
        assert_eq!(
            on_child,
            (mine + 5).min(19),
            "inherited by threads it starts"
        );
        assert_eq!(
            niceness_of(unsafe { libc::gettid() }),
            mine,
            "main untouched"
        );
        drop(bg);
    }
}

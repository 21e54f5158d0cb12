//! Redis deployments started for one test: a Redis Cluster of fresh primaries, and a
//! Sentinel set (a primary, a replica and three sentinels), each on the port range the test
//! gives, in a temporary folder of its own.
//!
//! The servers are child processes of the test (never daemonized): dropping the handle kills
//! them by PID and removes the folder, a panicking test included. They are also started with
//! `PR_SET_PDEATHSIG`, so they die with the thread that started them when the test process is
//! killed before it can drop anything: start them from the test's own thread (the body of a
//! `#[tokio::test]`), not from a blocking-pool thread that may end first.
//!
//! Without `redis-server` (or `redis-cli` for the Cluster) the test is skipped through
//! [`crate::skip`], which fails it under `EBOK_REQUIRE_SERVICES=1`. A port already in use
//! fails the test: it names the port, since another server answering there would be tested
//! in place of ours.

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

/// How long a server may take to answer after it is started.
const START_LIMIT: Duration = Duration::from_secs(10);
/// How long the cluster or the sentinels may take to agree on the topology.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);
/// The Cluster bus of a node listens this far above its port.
const BUS_OFFSET: u16 = 10_000;

/// One `redis-server` child process.
struct Server {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    /// Start `redis-server ARGS` with its output in `dir/PORT.log`.
    fn spawn(dir: &Path, port: u16, args: &[String]) -> Server {
        let log = dir.join(format!("{port}.log"));
        let out = File::create(&log).expect("create the server's log file");
        let err = out.try_clone().expect("clone the log file handle");
        let parent = std::process::id() as libc::pid_t;
        let mut cmd = Command::new("redis-server");
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated between fork
        // and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::other(
                        "the test ended before the server started",
                    ));
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting redis-server on port {port}: {e}"));
        Server {
            port,
            child: Some(child),
            log,
        }
    }

    /// Start a data node on loopback without persistence, options `extra` added.
    fn spawn_data(dir: &Path, port: u16, extra: &[String]) -> Server {
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
            "--daemonize",
            "no",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend_from_slice(extra);
        Server::spawn(dir, port, &args)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL the process and reap it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The end of its log, for failure messages.
    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Wait until this very process answers (its `process_id` in `INFO server`, so a server
    /// of someone else on the port does not count); panics with its log otherwise.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_LIMIT;
        let pid = self.child.as_ref().map(Child::id).unwrap_or_default();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "redis-server on port {} exited ({status}):\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            if let Ok(info) = query::<String>(self.port, redis::cmd("INFO").arg("server")).await {
                if info_field(&info, "process_id") == Some(pid.to_string().as_str()) {
                    return;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "redis-server on port {} did not answer within {START_LIMIT:?}:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Send one command to `127.0.0.1:port` on a connection of its own.
async fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    cmd.query_async(&mut conn).await
}

/// The value of `name:` in an `INFO` or `CLUSTER INFO` answer.
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim_end()
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

/// Whether `program --version` runs; the reason when it does not.
fn missing(program: &str) -> Option<String> {
    match Command::new(program).arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("{program} --version failed: {}", out.status)),
        Err(e) => Some(format!("{program}: {e}")),
    }
}

/// Panic naming `test` and the port when one of `ports` is taken.
fn require_free(test: &str, ports: impl IntoIterator<Item = u16>) {
    for port in ports {
        if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
            panic!("{test}: port {port} is not free for a test server: {e}");
        }
    }
}

fn temp_dir(test: &str) -> tempfile::TempDir {
    let name: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    tempfile::Builder::new()
        .prefix(&format!("ebok-redis-{name}-"))
        .tempdir()
        .expect("create a temporary folder for the test servers")
}

/// Poll `check` every 50 ms until it holds; panics with `what` and the last state it
/// described after `limit`.
async fn settle<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let last = match check().await {
            Ok(()) => return,
            Err(state) => state,
        };
        if Instant::now() >= deadline {
            panic!("{what} within {limit:?}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Redis Cluster of fresh primaries without replicas on `base_port..base_port + masters`
/// (bus ports 10000 above), every slot assigned.
pub struct RedisCluster {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Start `masters` nodes, join them with `redis-cli --cluster create` and wait until every
    /// node says `cluster_state:ok`. `None` (the skip recorded) without `redis-server` or
    /// `redis-cli`.
    pub async fn start(test: &str, base_port: u16, masters: usize) -> Option<RedisCluster> {
        if let Some(why) = missing("redis-server").or_else(|| missing("redis-cli")) {
            crate::skip(test, "redis-cluster", &why);
            return None;
        }
        assert!(masters >= 1, "a cluster needs at least one node");
        let ports: Vec<u16> = (0..masters as u16).map(|i| base_port + i).collect();
        require_free(
            test,
            ports
                .iter()
                .flat_map(|&p| [p, p + BUS_OFFSET])
                .collect::<Vec<_>>(),
        );
        let dir = temp_dir(test);
        let mut servers: Vec<Server> = ports
            .iter()
            .map(|&port| {
                let nodes_file = dir.path().join(format!("nodes-{port}.conf"));
                let cluster = [
                    "--cluster-enabled".to_owned(),
                    "yes".to_owned(),
                    "--cluster-config-file".to_owned(),
                    nodes_file.display().to_string(),
                ];
                Server::spawn_data(dir.path(), port, &cluster)
            })
            .collect();
        for server in &mut servers {
            server.wait_ready().await;
        }
        let mut create = tokio::process::Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(ports.iter().map(|p| format!("127.0.0.1:{p}")));
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = create
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "{test}: redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { servers, _dir: dir };
        let known = masters.to_string();
        settle(
            "the cluster did not come up on every node",
            SETTLE_LIMIT,
            || async {
                for &port in &ports {
                    let info = query::<String>(port, redis::cmd("CLUSTER").arg("INFO"))
                        .await
                        .map_err(|e| format!("{port}: {e}"))?;
                    let ok = info_field(&info, "cluster_state") == Some("ok")
                        && info_field(&info, "cluster_slots_ok") == Some("16384")
                        && info_field(&info, "cluster_known_nodes") == Some(known.as_str());
                    if !ok {
                        return Err(format!("{port}: {info}"));
                    }
                }
                Ok(())
            },
        )
        .await;
        Some(cluster)
    }

    /// The nodes' URLs (`redis://127.0.0.1:PORT/`).
    pub fn nodes(&self) -> Vec<String> {
        self.servers.iter().map(Server::url).collect()
    }

    /// SIGKILL node `i` (its slots stay uncovered: the cluster has no replicas).
    pub fn kill(&mut self, i: usize) {
        self.servers[i].kill();
    }
}

/// A primary and its replica watched by three sentinels (quorum 2, a primary is down after
/// 1 s without an answer): the primary on `base_port`, the replica on `base_port + 1`, the
/// sentinels on `base_port + 2..=base_port + 4`.
pub struct RedisSentinel {
    /// The primary as started, then the replica.
    data: Vec<Server>,
    sentinels: Vec<Server>,
    service: String,
    /// The port of the primary [`RedisSentinel::kill_primary`] killed.
    killed: Option<u16>,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    /// Start the five servers and wait until every sentinel knows the primary, the replica
    /// and the other two sentinels. `None` (the skip recorded) without `redis-server`.
    pub async fn start(test: &str, base_port: u16) -> Option<RedisSentinel> {
        if let Some(why) = missing("redis-server") {
            crate::skip(test, "redis-sentinel", &why);
            return None;
        }
        require_free(test, base_port..base_port + 5);
        let dir = temp_dir(test);
        let service = "ebok".to_owned();
        let (primary, replica) = (base_port, base_port + 1);
        let follow = ["--replicaof".to_owned(), format!("127.0.0.1 {primary}")];
        let mut data = vec![
            Server::spawn_data(dir.path(), primary, &[]),
            Server::spawn_data(dir.path(), replica, &follow),
        ];
        for server in &mut data {
            server.wait_ready().await;
        }
        // Each sentinel is told the others and the replica up front (with fixed ids), so
        // they need not wait for each other's hello messages.
        let sentinel_ports: Vec<u16> = (base_port + 2..base_port + 5).collect();
        let id = |port: u16| format!("{port:040x}");
        let mut sentinels = Vec::new();
        for &port in &sentinel_ports {
            let mut conf = format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\nsentinel myid {myid}\n\
                 sentinel monitor {service} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {service} 1000\n\
                 sentinel failover-timeout {service} 5000\n\
                 sentinel parallel-syncs {service} 1\n\
                 sentinel known-replica {service} 127.0.0.1 {replica}\n",
                dir = dir.path().display(),
                myid = id(port),
            );
            for &other in sentinel_ports.iter().filter(|&&p| p != port) {
                conf.push_str(&format!(
                    "sentinel known-sentinel {service} 127.0.0.1 {other} {}\n",
                    id(other)
                ));
            }
            let path = dir.path().join(format!("sentinel-{port}.conf"));
            std::fs::write(&path, conf).expect("write a sentinel configuration");
            let args = [path.display().to_string(), "--sentinel".to_owned()];
            sentinels.push(Server::spawn(dir.path(), port, &args));
        }
        for server in &mut sentinels {
            server.wait_ready().await;
        }
        let set = RedisSentinel {
            data,
            sentinels,
            service,
            killed: None,
            _dir: dir,
        };
        settle(
            "the sentinels did not see the primary, the replica and each other",
            SETTLE_LIMIT,
            || async {
                for &port in &sentinel_ports {
                    let fields: Vec<String> =
                        query(port, redis::cmd("SENTINEL").arg("MASTER").arg(&set.service))
                            .await
                            .map_err(|e| format!("{port}: {e}"))?;
                    let field = |name: &str| {
                        fields
                            .chunks(2)
                            .find(|kv| kv[0] == name)
                            .map(|kv| kv[1].as_str())
                    };
                    let ok = field("flags") == Some("master")
                        && field("num-slaves") == Some("1")
                        && field("num-other-sentinels") == Some("2");
                    if !ok {
                        return Err(format!("{port}: {fields:?}"));
                    }
                }
                let replication: String = query(replica, redis::cmd("INFO").arg("replication"))
                    .await
                    .map_err(|e| format!("{replica}: {e}"))?;
                match info_field(&replication, "master_link_status") {
                    Some("up") => Ok(()),
                    _ => Err(format!("{replica}: {replication}")),
                }
            },
        )
        .await;
        Some(set)
    }

    /// The name the sentinels monitor the primary under.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The sentinels' URLs (`redis://127.0.0.1:PORT/`).
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(Server::url).collect()
    }

    /// The port of the primary as the first sentinel that answers names it now.
    pub async fn primary_port(&self) -> u16 {
        let mut problems = Vec::new();
        for sentinel in self.sentinels.iter().filter(|s| s.is_running()) {
            let cmd = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.service)
                .to_owned();
            match query::<(String, u16)>(sentinel.port, &cmd).await {
                Ok((_, port)) => return port,
                Err(e) => problems.push(format!("{}: {e}", sentinel.port)),
            }
        }
        panic!("no sentinel names the primary: {problems:?}");
    }

    /// SIGKILL the current primary; gives its port.
    pub async fn kill_primary(&mut self) -> u16 {
        let port = self.primary_port().await;
        let server = self
            .data
            .iter_mut()
            .find(|s| s.port == port && s.is_running())
            .unwrap_or_else(|| panic!("the sentinels name {port}, which is not running"));
        server.kill();
        self.killed = Some(port);
        port
    }

    /// Wait until the sentinels name a primary other than the one killed and it answers as
    /// a primary; gives its port. Panics after `limit`.
    pub async fn wait_for_promotion(&self, limit: Duration) -> u16 {
        let killed = self.killed.expect("kill_primary first");
        let promoted = std::cell::Cell::new(0);
        settle("no replica was promoted", limit, || async {
            let port = self.primary_port().await;
            if port == killed {
                return Err(format!("the sentinels still name {port}"));
            }
            let role: Vec<redis::Value> = query(port, &redis::cmd("ROLE"))
                .await
                .map_err(|e| format!("{port}: {e}"))?;
            match role.first() {
                Some(redis::Value::BulkString(r)) if r == b"master" => {
                    promoted.set(port);
                    Ok(())
                }
                other => Err(format!("{port} answers ROLE with {other:?}")),
            }
        })
        .await;
        promoted.get()
    }
}

//! [`Runtime`]: the handle everything else talks to.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use toka_auth::KeySet;
use toka_bus_core::BroadcastBus;
use toka_kernel::{OpcodeRegistry, WorldState};
use toka_store_core::{Head, StorageBackend, seal};
use toka_types::{AgentSpec, EntityId, KernelEvent, Message};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::checkpoint::{CheckpointSettings, SignedCheckpoint};
use crate::clock::{Clock, SystemClock};
use crate::codec::{self, Provenance};
use crate::config::{Config, PipelineConfig, RateLimitConfig, SnapshotConfig};
use crate::error::{Refused, RuntimeError, SubmitError};
use crate::pipeline::{Command, Committed, Request, Writer};
use crate::recovery::{self, Recovered};
use crate::shared::{BUS_CAPACITY, Metrics, Shared};

/// How often the runtime looks for task leases that ran out.
const LEASE_POLL: Duration = Duration::from_secs(1);
use crate::subscription::{self, Subscription};

/// How to run a runtime on a store you opened yourself.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// Queue, batch and busy settings.
    pub pipeline: PipelineConfig,
    /// Snapshot settings.
    pub snapshots: SnapshotConfig,
    /// Per-origin rate limit.
    pub rate_limit: RateLimitConfig,
    /// Lifetime of tokens the runtime mints.
    pub token_ttl_secs: u64,
    /// How long a chain of tokens may be renewed (see `toka_kernel::Context`).
    pub chain_lifetime_secs: u64,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Extension handlers.
    pub handlers: OpcodeRegistry,
    /// The root agent's name, used if the log is new.
    pub root_name: String,
    /// Signed checkpoints (none: the runtime signs none and trusts no snapshot
    /// without a full replay).
    pub checkpoints: Option<CheckpointSettings>,
    /// The keyring file the keys came from, reloaded when it changes (none: keys are
    /// fixed for the runtime's life).
    pub key_file: Option<std::path::PathBuf>,
    /// This node's name on the tool calls it starts (a node resolves only its own
    /// calls after a crash). [`Runtime::start`] uses the checkpoint key's id, stable
    /// for a data folder.
    pub node_name: String,
}

impl RuntimeOptions {
    /// The options a configuration gives.
    pub fn from_config(config: &Config) -> Self {
        Self {
            pipeline: config.pipeline.clone(),
            snapshots: config.snapshots.clone(),
            rate_limit: config.rate_limit.clone(),
            token_ttl_secs: config.auth.token_ttl_secs,
            chain_lifetime_secs: config.auth.max_chain_lifetime_secs,
            clock: Arc::new(SystemClock),
            handlers: OpcodeRegistry::new(),
            root_name: "root".into(),
            checkpoints: None,
            key_file: None,
            node_name: "local".into(),
        }
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

pub(crate) struct Inner {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    keys: std::sync::RwLock<Arc<KeySet>>,
    /// One key reload at a time.
    reloading: Mutex<()>,
    options: RuntimeOptions,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// A running Toka: submit messages, read committed state, subscribe to events.
/// Cheap to clone; all clones drive the same writer.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("head", &self.head())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Opens the configured store and keys, recovers, and starts the writer.
    pub async fn start(config: &Config) -> Result<Self, RuntimeError> {
        Self::start_with(config, OpcodeRegistry::new()).await
    }

    /// [`Runtime::start`], with what the node plugs into its kernel (extension
    /// handlers, the tool schema check).
    pub async fn start_with(
        config: &Config,
        handlers: OpcodeRegistry,
    ) -> Result<Self, RuntimeError> {
        let key_file = config.resolve(&config.auth.key_file);
        let keys = crate::keys::load_keys(&key_file)?;
        let mut options = RuntimeOptions::from_config(config);
        options.handlers = handlers;
        let checkpoints = CheckpointSettings::from_config(config)?;
        options.node_name = checkpoints.key.verifier().key_id().to_string();
        options.checkpoints = Some(checkpoints);
        options.key_file = Some(key_file);
        let store = crate::store::open_store(config).await?;
        let runtime = Self::with_store(store, keys, options).await?;
        // A rotation made while the node was down is recorded now.
        runtime.record_keys_against_log().await?;
        runtime.watch_key_file();
        Ok(runtime)
    }

    /// Recovers `store` (writing the genesis if it is empty) and starts the writer.
    pub async fn with_store(
        store: Arc<dyn StorageBackend>,
        keys: KeySet,
        options: RuntimeOptions,
    ) -> Result<Self, RuntimeError> {
        let latest_checkpoint;
        let Recovered {
            mut state,
            mut head,
            from_snapshot,
        } = {
            let trusted = match &options.checkpoints {
                Some(c) => c.trusted(store.as_ref()).await?,
                None => Vec::new(),
            };
            let recovered =
                recovery::recover_with(store.as_ref(), &options.handlers, &trusted, true, |_| {})
                    .await?;
            latest_checkpoint = crate::checkpoint::newest(&trusted).cloned();
            recovered
        };
        tracing::info!(
            head = head.seq,
            from_snapshot,
            driver = store.driver(),
            "log recovered"
        );
        let mut last_now = options.clock.now();
        if head.seq == 0 {
            let spec = AgentSpec::new(options.root_name.clone())
                .map_err(|e| RuntimeError::Genesis(e.to_string()))?;
            let ctx = toka_kernel::Context::new(last_now, 1);
            let events = toka_kernel::decide_genesis(&state, &spec, &ctx)
                .map_err(|e| RuntimeError::Genesis(e.to_string()))?;
            let root = match events.first() {
                Some(toka_types::KernelEvent::AgentSpawned { agent, .. }) => *agent,
                _ => {
                    return Err(RuntimeError::Genesis(
                        "genesis produced no root agent".into(),
                    ));
                }
            };
            let who = Provenance {
                origin: root,
                jti: None,
                timestamp: last_now,
            };
            let records = seal(Head::EMPTY, codec::encode(root, 1, &events, &who));
            head = store.append(0, &records).await?;
            for e in &events {
                toka_kernel::apply(&mut state, e, &options.handlers);
            }
            tracing::info!(%root, "new log: root agent created");
        }
        let namespace = state
            .root()
            .ok_or_else(|| RuntimeError::Genesis("the log has no root agent".into()))?;
        last_now = last_now.max(options.clock.now());
        let kernel = recovery::kernel_for(state.clone(), keys.clone(), &options.handlers);
        // Readers' state keeps its digest current from here on; the first one costs
        // time with the state's size, so it is taken now, not by the first reader.
        state.digest();
        let shared = Arc::new(Shared {
            state: std::sync::RwLock::new(state),
            head: watch::channel(head).0,
            bus: BroadcastBus::new(BUS_CAPACITY),
            store,
            metrics: Metrics::default(),
            latest_checkpoint: std::sync::RwLock::new(latest_checkpoint.clone()),
            unavailable: std::sync::RwLock::new(None),
        });
        let (tx, rx) = mpsc::channel(options.pipeline.queue_capacity);
        let writer = Writer {
            kernel,
            head,
            namespace,
            clock: Arc::clone(&options.clock),
            last_now,
            shared: Arc::clone(&shared),
            handlers: options.handlers.clone(),
            pipeline: options.pipeline.clone(),
            snapshots: options.snapshots.clone(),
            since_snapshot: 0,
            snapshot_job: None,
            chain_lifetime_secs: options.chain_lifetime_secs,
            outage: None,
            inflight: None,
            decided: None,
            head_right: None,
            others_seen: None,
            limiter: match (
                NonZeroU32::new(options.rate_limit.per_second),
                NonZeroU32::new(options.rate_limit.burst),
            ) {
                (Some(rate), Some(burst)) => Some(RateLimiter::keyed(
                    Quota::per_second(rate).allow_burst(burst),
                )),
                _ => None,
            },
            checkpointer: options.checkpoints.clone().map(|settings| {
                let (last_seq, last_time) = latest_checkpoint
                    .as_ref()
                    .map(|c| (c.checkpoint.seq, c.checkpoint.time))
                    .unwrap_or((0, last_now));
                crate::checkpoint::Checkpointer {
                    settings,
                    last_seq,
                    last_time,
                }
            }),
        };
        let handle = tokio::spawn(writer.run(rx));
        // On a shared log, wake the writer when another node moves the head, so this
        // node's readers and subscribers see those events without waiting for a submit.
        if let Some(mut watch) = shared.store.watch_head() {
            let (tx, shared) = (tx.clone(), Arc::clone(&shared));
            tokio::spawn(async move {
                while watch.changed().await.is_ok() {
                    let theirs = *watch.borrow_and_update();
                    if theirs > shared.head.borrow().seq
                        && tx.try_send(Command::CatchUp).is_err()
                        && tx.is_closed()
                    {
                        break;
                    }
                }
            });
        }
        let runtime = Self {
            inner: Arc::new(Inner {
                tx,
                shared,
                keys: std::sync::RwLock::new(Arc::new(keys)),
                reloading: Mutex::new(()),
                options,
                writer: Mutex::new(Some(handle)),
            }),
        };
        runtime.expire_leases_on_a_timer();
        Ok(runtime)
    }

    /// Once a second, if a claimed task's lease ran out, asks the kernel to queue it
    /// again (the kernel decides with the context's time). Ends with the runtime.
    fn expire_leases_on_a_timer(&self) {
        let weak = self.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LEASE_POLL);
            loop {
                tick.tick().await;
                let Some(runtime) = Runtime::upgrade(&weak) else {
                    return;
                };
                let now = runtime.now_secs();
                if runtime.read(|s| s.leases().any_due(now))
                    && let Err(r) = runtime.submit_request(Request::ExpireLeases).await
                {
                    if matches!(r.error, SubmitError::Stopped) {
                        return;
                    }
                    tracing::warn!(error = %r.error, "expiring task leases failed; trying again");
                }
            }
        });
    }

    /// Submits `message` and waits until its events are durable (or it is refused).
    /// A refusal hands the message back.
    /// The rate limit applies after authentication, to the token's verified subject.
    pub async fn submit(&self, message: Message) -> Result<Committed, Refused> {
        self.submit_request(Request::Message(message)).await
    }

    /// Queues `request` for the writer and waits for its answer.
    pub(crate) async fn submit_request(&self, request: Request) -> Result<Committed, Refused> {
        let metrics = &self.inner.shared.metrics;
        metrics.submitted.fetch_add(1, Ordering::Relaxed);
        let refuse = |error, request: Request| {
            Err(Refused {
                error,
                message: match request {
                    Request::Message(m) => Some(Box::new(m)),
                    Request::RootToken { .. }
                    | Request::Keys { .. }
                    | Request::Tool(_)
                    | Request::ExpireLeases => None,
                },
            })
        };
        let (reply, answer) = oneshot::channel();
        let timeout = Duration::from_millis(self.inner.options.pipeline.busy_timeout_ms);
        if let Err(e) = self
            .inner
            .tx
            .send_timeout(Command::Submit { request, reply }, timeout)
            .await
        {
            let (error, command) = match e {
                mpsc::error::SendTimeoutError::Timeout(c) => {
                    metrics.busy.fetch_add(1, Ordering::Relaxed);
                    (SubmitError::Busy, c)
                }
                mpsc::error::SendTimeoutError::Closed(c) => (SubmitError::Stopped, c),
            };
            return match command {
                Command::Submit { request, .. } => refuse(error, request),
                // We sent a Submit; nothing else can come back.
                _ => Err(Refused {
                    error,
                    message: None,
                }),
            };
        }
        match answer.await {
            Ok(Ok((committed, request))) => {
                drop(request);
                Ok(committed)
            }
            Ok(Err((
                SubmitError::Rejected(toka_kernel::KernelError::AlreadyCommitted {
                    first_seq,
                    events,
                }),
                request,
            ))) => match self.read_committed(first_seq, events as usize + 1).await {
                Ok(events) => Ok(Committed {
                    first_seq,
                    events,
                    replayed: true,
                }),
                Err(reason) => refuse(SubmitError::Storage(reason), request),
            },
            Ok(Err((error, request))) => refuse(error, request),
            // The writer dropped the reply without answering: it is gone.
            Err(_) => Err(Refused {
                error: SubmitError::Stopped,
                message: None,
            }),
        }
    }

    /// The `count` events from `first_seq` on, as committed (an idempotent retry's
    /// answer).
    async fn read_committed(
        &self,
        first_seq: u64,
        count: usize,
    ) -> Result<Vec<KernelEvent>, String> {
        let records = self
            .store()
            .read_range(first_seq, count)
            .await
            .map_err(|e| e.to_string())?;
        if records.len() != count || records.first().map(|r| r.header.seq) != Some(first_seq) {
            return Err(format!("the original at seq {first_seq} is not in the log"));
        }
        records
            .iter()
            .map(|r| crate::codec::decode(r).map_err(|e| e.to_string()))
            .collect()
    }

    /// The committed state, read-locked for the duration of `read`.
    pub fn read<T>(&self, read: impl FnOnce(&WorldState) -> T) -> T {
        read(&self.inner.shared.read_state())
    }

    /// The committed head.
    pub fn head(&self) -> Head {
        *self.inner.shared.head.borrow()
    }

    /// A watch on the committed head.
    pub fn watch_head(&self) -> watch::Receiver<Head> {
        self.inner.shared.head.subscribe()
    }

    /// The root agent of the log.
    pub fn root(&self) -> Option<EntityId> {
        self.read(|s| s.root())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn StorageBackend> {
        &self.inner.shared.store
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.shared.metrics
    }

    /// How many live subscribers the bus has.
    pub fn subscriber_count(&self) -> usize {
        toka_bus_core::EventBus::subscriber_count(&self.inner.shared.bus)
    }

    /// Every committed record from `from` on (history, then live).
    pub fn subscribe(&self, from: u64) -> Subscription {
        subscription::subscribe(Arc::clone(&self.inner.shared), from)
    }

    /// Takes a snapshot now, at the committed head; returns its `seq`.
    pub async fn snapshot(&self) -> Result<u64, String> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Snapshot { reply })
            .await
            .map_err(|_| "the runtime stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the runtime stopped".to_string())?
    }

    /// Why the runtime cannot commit right now (the store failed and it is retrying),
    /// or `None` when it can.
    pub fn unavailable(&self) -> Option<String> {
        self.inner
            .shared
            .unavailable
            .read()
            .map(|u| u.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The newest signed checkpoint (read from the file at start, or signed since).
    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.inner
            .shared
            .latest_checkpoint
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The checkpoint key's public half, if this runtime signs checkpoints.
    pub fn checkpoint_verifier(&self) -> Option<&crate::checkpoint::CheckpointVerifier> {
        self.inner
            .options
            .checkpoints
            .as_ref()
            .map(|c| c.key.verifier())
    }

    /// The signing keys in force.
    pub fn keys(&self) -> Arc<KeySet> {
        self.inner
            .keys
            .read()
            .map(|k| Arc::clone(&k))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner()))
    }

    pub(crate) fn set_keys(&self, keys: KeySet) {
        *self.inner.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }

    /// A handle that does not keep the runtime (and its store) alive.
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// The runtime behind a [`Runtime::downgrade`]d handle, while it lives.
    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Self> {
        weak.upgrade().map(|inner| Self { inner })
    }

    /// Whether the writer has stopped (after [`Runtime::shutdown`]).
    pub(crate) fn is_stopped(&self) -> bool {
        self.inner.tx.is_closed()
    }

    pub(crate) fn key_file(&self) -> Option<&std::path::Path> {
        self.inner.options.key_file.as_deref()
    }

    pub(crate) async fn reload_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.reloading.lock().await
    }

    /// This node's name on the tool calls it starts.
    pub fn node_name(&self) -> &str {
        &self.inner.options.node_name
    }

    /// The runtime clock's time, in Unix seconds.
    pub fn now_secs(&self) -> u64 {
        self.inner.options.clock.now().as_unix_secs()
    }

    /// The lifetime of root tokens this runtime issues.
    pub(crate) fn token_ttl_secs(&self) -> u64 {
        self.inner.options.token_ttl_secs
    }

    /// Stops taking messages, lets the writer commit everything already queued, takes
    /// the final snapshot if configured, and waits for the writer to finish. Nothing
    /// acknowledged is lost; later submissions get [`SubmitError::Stopped`].
    pub async fn shutdown(&self) {
        let handle = self.inner.writer.lock().await.take();
        let (reply, done) = oneshot::channel();
        if self
            .inner
            .tx
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}

//! The model in service, and the watcher that swaps in new versions without downtime.
//!
//! A call takes an `Arc<Model>` snapshot when it starts and scores every lead with it, so a swap
//! never changes the model under a call, never blocks one for longer than an `Arc` clone, and
//! the old model is freed when its last call ends.
//!
//! At start-up the version `models/CURRENT` names is loaded before the server accepts calls; if
//! it cannot be, the server does not start ([`Watcher::start`]). Then the watcher polls
//! `models/CURRENT`. When it names a version other than the one in service it
//! loads the artifact (off the async threads), validates it ([`Model::load`] checks the
//! artifact's consistency, then a lead with every value missing must score to a probability in
//! (0, 1)), and swaps it in. A version that fails is refused: logged as an error, counted in
//! `leadscore_model_reloads_total{result="failed"}`, and the old model keeps serving; it is
//! retried only when `CURRENT` or that version's file changes.
//!
//! Health changes go through [`Lifecycle`], which orders them with shutdown: a load that
//! finishes after shutdown began neither swaps the model nor turns health back to `SERVING`.

use super::metrics::Metrics;
use crate::encoder::RawValue;
use crate::model::Model;
use crate::registry::Registry;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// A loaded model and what the server derives from it.
#[derive(Debug)]
pub struct Served {
    pub model: Model,
    /// The model's version, shared by every prediction-log row it scores (made once here, not
    /// per call).
    pub version: std::sync::Arc<str>,
    /// `leadscore_out_of_range_values_total` of each attribute (`None`: not numeric, or not
    /// counted), made once here so that a call only increments.
    out_of_range: Vec<Option<prometheus::IntCounter>>,
}

impl Served {
    /// A model served without metrics (the fuzz targets and benchmarks score with it).
    pub fn new(model: Model) -> Served {
        let version = std::sync::Arc::from(model.version());
        Served {
            model,
            version,
            out_of_range: Vec::new(),
        }
    }

    /// A model served with its out-of-range counters in `metrics`.
    pub fn counted(model: Model, metrics: &Metrics) -> Served {
        let out_of_range = metrics.out_of_range_counters(&model);
        Served {
            out_of_range,
            ..Served::new(model)
        }
    }

    /// Counts the numbers of a scored lead that lie outside the training range (attribute
    /// indices, as in [`crate::model::Scored::out_of_range`]).
    pub fn count_out_of_range(&self, attributes: &[usize]) {
        for &i in attributes {
            if let Some(Some(counter)) = self.out_of_range.get(i) {
                counter.inc();
            }
        }
    }
}

impl std::ops::Deref for Served {
    type Target = Model;

    fn deref(&self) -> &Model {
        &self.model
    }
}

/// The model in service.
#[derive(Debug, Default)]
pub struct ModelHolder {
    /// `None` until the first version loads; then replaced whole on each reload.
    current: RwLock<Option<Arc<Served>>>,
}

impl ModelHolder {
    /// The model to score a call with.
    pub fn get(&self) -> Option<Arc<Served>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn swap(&self, model: Arc<Served>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(model);
    }
}

/// The server's health, ordered with shutdown.
pub struct Lifecycle {
    health: HealthReporter,
    /// The service name whose health follows the model (besides the overall "" entry).
    service_name: &'static str,
    /// True once shutdown has begun. Held across every transition, so a reload finishing during
    /// shutdown cannot turn health back to `SERVING` after shutdown turned it `NOT_SERVING`.
    stopping: tokio::sync::Mutex<bool>,
}

impl Lifecycle {
    pub fn new(health: HealthReporter, service_name: &'static str) -> Lifecycle {
        Lifecycle {
            health,
            service_name,
            stopping: tokio::sync::Mutex::new(false),
        }
    }

    async fn set(&self, status: ServingStatus) {
        self.health.set_service_status("", status).await;
        self.health
            .set_service_status(self.service_name, status)
            .await;
    }

    /// Runs `swap` and turns health `SERVING`, unless shutdown has begun; then does neither and
    /// returns false.
    async fn serve_with(&self, swap: impl FnOnce()) -> bool {
        let stopping = self.stopping.lock().await;
        if *stopping {
            return false;
        }
        swap();
        self.set(ServingStatus::Serving).await;
        true
    }

    /// Turns health `NOT_SERVING` for good.
    pub async fn shut_down(&self) {
        let mut stopping = self.stopping.lock().await;
        *stopping = true;
        self.set(ServingStatus::NotServing).await;
    }
}

/// The version last refused, so a broken promotion is reported once, not on every poll.
#[derive(Debug, Clone, PartialEq)]
struct Attempt {
    version: String,
    modified: Option<SystemTime>,
}

/// What the watcher remembers between polls.
#[derive(Debug, Default)]
struct WatchState {
    /// The version (directory name, as `CURRENT` names it) the model in service was loaded
    /// from. Compared with `CURRENT` rather than the artifact's own `model_version`, which may
    /// differ (a version directory copied under another name) and would reload it forever.
    loaded: Option<String>,
    /// The last version refused, not retried until it changes.
    refused: Option<Attempt>,
    /// The last error reading `CURRENT`, logged once.
    last_error: Option<String>,
}

/// What the watcher needs.
pub struct Watcher {
    pub registry: Registry,
    pub holder: Arc<ModelHolder>,
    pub metrics: Arc<Metrics>,
    pub lifecycle: Arc<Lifecycle>,
    pub interval: Duration,
}

impl Watcher {
    /// Loads the version `CURRENT` names, before the server accepts calls, and returns the
    /// watcher ready to poll for new versions.
    ///
    /// A `CURRENT` that cannot be read, or that names a version that cannot be loaded, is an
    /// error: a server that would stay `NOT_SERVING` until someone notices is better stopped
    /// where its operator sees it (at reload time, by contrast, the old model keeps serving).
    /// A missing `CURRENT` is not an error: the server waits for the first promotion.
    pub async fn start(self) -> Result<Watching, String> {
        let mut state = WatchState::default();
        let version = match self.registry.current_version() {
            Ok(Some(version)) => version,
            // `check` logs the wait.
            Ok(None) => {
                return Ok(Watching {
                    watcher: self,
                    state,
                });
            }
            Err(error) => return Err(error.to_string()),
        };
        match self.load(&version).await {
            Ok(model) => {
                self.swap_in(&mut state, version, model).await;
                Ok(Watching {
                    watcher: self,
                    state,
                })
            }
            Err(error) => {
                self.metrics.reloads.with_label_values(&["failed"]).inc();
                Err(format!(
                    "{} names {version:?}, which cannot be loaded: {error}",
                    self.registry.dir.join(crate::registry::CURRENT).display()
                ))
            }
        }
    }

    async fn check(&self, state: &mut WatchState) {
        let version = match self.registry.current_version() {
            Ok(Some(version)) => version,
            other => {
                let message = match other {
                    Ok(_) => format!(
                        "no model in service yet: {} does not exist; waiting for one",
                        self.registry.dir.join(crate::registry::CURRENT).display()
                    ),
                    Err(error) => error.to_string(),
                };
                if state.last_error.as_ref() != Some(&message) {
                    if self.holder.get().is_some() {
                        tracing::error!(%message, "cannot read the version in service; keeping the current model");
                    } else {
                        tracing::warn!(%message, "no model loaded");
                    }
                    state.last_error = Some(message);
                }
                return;
            }
        };
        state.last_error = None;
        if state.loaded.as_ref() == Some(&version) {
            return;
        }
        let attempt = Attempt {
            modified: std::fs::metadata(self.registry.model_path(&version))
                .and_then(|m| m.modified())
                .ok(),
            version: version.clone(),
        };
        if state.refused.as_ref() == Some(&attempt) {
            return;
        }
        match self.load(&version).await {
            Ok(model) => self.swap_in(state, version, model).await,
            Err(error) => {
                self.metrics.reloads.with_label_values(&["failed"]).inc();
                match self.holder.get() {
                    Some(serving) => tracing::error!(
                        %version, %error, serving = serving.version(),
                        "refused to load the new model version; the previous one keeps serving"
                    ),
                    None => tracing::error!(%version, %error, "cannot load the model in service"),
                }
                state.refused = Some(attempt);
            }
        }
    }

    /// Loads and validates a version off the async threads.
    async fn load(&self, version: &str) -> Result<Model, String> {
        let registry = self.registry.clone();
        let loading = version.to_string();
        tokio::task::spawn_blocking(move || load_and_validate(&registry, &loading))
            .await
            .unwrap_or_else(|panic| Err(format!("loading panicked: {panic}")))
    }

    /// Puts a loaded version in service, unless shutdown has begun.
    async fn swap_in(&self, state: &mut WatchState, version: String, model: Model) {
        let previous = state.loaded.clone();
        let served = Arc::new(Served::counted(model, &self.metrics));
        // The metrics change with the model, before health says SERVING.
        let swap = || {
            self.holder.swap(served);
            self.metrics.set_model_version(&version);
            self.metrics.reloads.with_label_values(&["ok"]).inc();
        };
        if !self.lifecycle.serve_with(swap).await {
            tracing::info!(%version, "shutting down: the version loaded is not swapped in");
            return;
        }
        match previous {
            Some(previous) => {
                tracing::info!(%version, %previous, "new model version in service")
            }
            None => tracing::info!(%version, "model loaded"),
        }
        state.loaded = Some(version);
        state.refused = None;
    }
}

/// The reload watcher once the version in service (if any) is loaded: see [`Watcher::start`].
pub struct Watching {
    watcher: Watcher,
    state: WatchState,
}

impl Watching {
    /// Checks `CURRENT` now and then every interval, until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            self.watcher.check(&mut self.state).await;
            tokio::select! {
                _ = tokio::time::sleep(self.watcher.interval) => {}
                _ = stop.wait_for(|&stopped| stopped) => return,
            }
        }
    }
}

/// Loads a version and checks that it scores.
pub fn load_and_validate(registry: &Registry, version: &str) -> Result<Model, String> {
    let model = registry.load(version).map_err(|e| e.to_string())?;
    if model.version() != version {
        tracing::warn!(
            directory = version,
            artifact = model.version(),
            "the artifact's model_version differs from its directory name"
        );
    }
    check_scores(&model)?;
    Ok(model)
}

/// The check a loaded model passes before it serves, beyond [`Model::new`]'s: a lead with every
/// value missing scores to a probability in (0, 1). Public so the fuzz targets (`fuzz/`) apply
/// the same check to artifacts read from bytes.
pub fn check_scores(model: &Model) -> Result<(), String> {
    let probe = model
        .score(|_| RawValue::Missing, 1)
        .map_err(|e| format!("a lead with every value missing cannot be scored: {e}"))?;
    if !(probe.probability > 0.0 && probe.probability < 1.0) {
        return Err(format!(
            "a lead with every value missing scores {}, outside (0, 1)",
            probe.probability
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::pb::health_server::Health;
    use tonic_health::pb::{HealthCheckRequest, health_check_response};

    async fn status(service: &tonic_health::server::HealthService, name: &str) -> i32 {
        service
            .check(tonic::Request::new(HealthCheckRequest {
                service: name.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .status
    }

    /// A reload that finishes after shutdown began neither swaps the model nor turns health
    /// back to SERVING.
    #[tokio::test]
    async fn nothing_turns_serving_after_shutdown() {
        let reporter = HealthReporter::new();
        let service = tonic_health::server::HealthService::from_health_reporter(reporter.clone());
        let lifecycle = Lifecycle::new(reporter, "svc");
        let serving = health_check_response::ServingStatus::Serving as i32;
        let not_serving = health_check_response::ServingStatus::NotServing as i32;

        let mut swapped = 0;
        assert!(lifecycle.serve_with(|| swapped += 1).await);
        assert_eq!(swapped, 1);
        assert_eq!(status(&service, "svc").await, serving);
        assert_eq!(status(&service, "").await, serving);

        lifecycle.shut_down().await;
        assert!(!lifecycle.serve_with(|| swapped += 1).await);
        assert_eq!(swapped, 1);
        assert_eq!(status(&service, "svc").await, not_serving);
        assert_eq!(status(&service, "").await, not_serving);
    }
}

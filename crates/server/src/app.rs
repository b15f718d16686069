use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use prism_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::throttle::LoginThrottle;
use crate::config::Settings;
use crate::metrics::Metrics;

use crate::state::{AppState, BODY_LIMIT};

pub fn router(state: AppState) -> Router {
    crate::routes::router()
        .merge(crate::web::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::middleware,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}

/// Opens the store, prepares the secret key and the first admin, and returns
/// the state the server runs on.
pub async fn prepare(settings: Settings) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let store = Store::open(&settings.store_url(), 16).await?;
    let secrets = crate::keys::load(&settings, &store).await?;
    crate::bootstrap::first_admin(&store, &settings).await?;
    let clock = settings.clock.clone();
    let oidc = settings.oidc.clone().map(prism_identity::oidc::Oidc::new).transpose()?;
    Ok(AppState {
        clock,
        oidc,
        store,
        secrets,
        settings: Arc::new(settings),
        metrics: Arc::new(Metrics::default()),
        throttle: Arc::new(LoginThrottle::default()),
        clusters: Arc::new(prism_kube::ClientCache::default()),
        job_wakeup: Arc::new(tokio::sync::Notify::new()),
    })
}

/// Runs the server on an already-bound listener until `shutdown` fires: the
/// seam tests use to start the real server on port 0.
pub async fn launch(state: AppState, listener: TcpListener, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let runner = crate::jobs::spawn_runner(state.clone(), shutdown.clone());
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tracing::info!(address = %listener.local_addr()?, instance = %state.settings.instance_id, "prism is listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await?;
    runner.await.ok();
    state.store.close().await;
    tracing::info!("prism stopped");
    Ok(())
}

/// `prism serve`: settings, logging, signals, then [`launch`].
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    init_logging(settings.log_json);
    tracing::info!(settings = ?settings, "starting");
    let _data_dir = crate::bootstrap::claim_data_dir(&settings)?;
    let listener = TcpListener::bind(settings.listen).await?;
    let state = prepare(settings).await?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    launch(state, listener, rx).await
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PRISM_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Logs go to stderr; stdout carries only what a person must read once (the first password).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

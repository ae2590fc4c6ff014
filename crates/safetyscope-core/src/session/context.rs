//! The DataFusion session every dataset runs in: its memory pool, spill
//! settings and an empty stream for tables a dataset does not have.

use std::sync::Arc;

use datafusion::prelude::*;

use crate::util::error::{Error, Result};

/// The memory the sessions of native builds may use for query state before
/// spilling to disk (0: no limit). Set once per process, before datasets
/// are opened (the CLI's `--memory-limit`).
static MEMORY_LIMIT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Limit the memory of every session created from now on to `bytes`
/// (sorts, joins and aggregations spill to the system's temporary directory
/// past it); `None` removes the limit. Fails when a runtime with that limit
/// cannot be built (no usable temporary directory to spill to).
pub fn set_memory_limit(bytes: Option<usize>) -> Result<()> {
    if let Some(limit) = bytes {
        limited_runtime(limit).map_err(|e| {
            Error::option(
                "memory-limit",
                format!("cannot limit memory to {limit} bytes: {e}"),
            )
        })?;
    }
    MEMORY_LIMIT.store(bytes.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

fn limited_runtime(
    limit: usize,
) -> datafusion::error::Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
    // Each spilling operator (sorts, aggregations) gets an even share of
    // what the others cannot spill, so two of them in one plan both spill
    // rather than the first starving the second; errors name the five
    // largest consumers.
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(limit),
        std::num::NonZeroUsize::new(5).expect("non-zero"),
    );
    datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()
}

/// A DataFusion session configured for safetyscope (one partition on wasm32;
/// the memory limit of [`set_memory_limit`]).
///
/// Native sessions carry DataFusion's full function library and file
/// formats (the `sql` command and Python users query with them). The WASM
/// session registers none: every analysis builds its expressions from the
/// function objects directly, so the module links only the functions it
/// calls.
pub fn new_context() -> SessionContext {
    let mut config = SessionConfig::new();
    if cfg!(target_arch = "wasm32") {
        config = config.with_target_partitions(1);
    } else {
        config = config.with_information_schema(true);
    }
    let limit = MEMORY_LIMIT.load(std::sync::atomic::Ordering::Relaxed);
    let runtime = match limit {
        0 => None,
        // Checked by `set_memory_limit`.
        _ => limited_runtime(limit).ok(),
    }
    .unwrap_or_default();
    let builder = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime);
    #[cfg(not(target_arch = "wasm32"))]
    let builder = builder.with_default_features();
    let ctx = SessionContext::new_with_state(builder.build());
    for f in crate::session::episodes::udafs() {
        ctx.register_udaf(f.as_ref().clone());
    }
    ctx
}

/// Reserve `bytes` of the session's memory pool for `what`, the state an
/// analysis holds outside DataFusion's operators (sums per window, per cell),
/// so that `--memory-limit` bounds it too. Past the limit the error names
/// `option`, the option that narrows the analysis, with `hint`.
pub(crate) fn reserve(
    ctx: &SessionContext,
    what: &str,
    bytes: usize,
    option: &str,
    hint: &str,
) -> Result<datafusion::execution::memory_pool::MemoryReservation> {
    use datafusion::execution::memory_pool::MemoryConsumer;
    let r = MemoryConsumer::new(what).register(&ctx.runtime_env().memory_pool);
    r.try_grow(bytes).map_err(|_| {
        Error::option(
            option,
            format!(
                "{what} needs {} MB, more than the memory limit leaves; {hint}",
                bytes.div_ceil(1 << 20)
            ),
        )
    })?;
    Ok(r)
}

/// A stream of no batches (a table the dataset does not have).
pub(crate) fn empty_stream() -> datafusion::physical_plan::SendableRecordBatchStream {
    Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            Arc::new(arrow::datatypes::Schema::empty()),
            futures::stream::empty(),
        ),
    )
}
